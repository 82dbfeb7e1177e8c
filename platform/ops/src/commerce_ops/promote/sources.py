"""What runs in the source environment: its image references, by service."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

from ruamel.yaml import YAML

from commerce_ops.promote import PromotionRefused
from commerce_platform.environments import BUILD, PINNED_IMAGE

IMAGES_OUTPUT = "images"  # the program exports {"images": {<service>: <repo@sha256:...>}}
_DIGEST_PART = re.compile(r"@sha256:(?P<hex>.*)$")


def from_outputs_json(text: str, label: str) -> dict[str, Any]:
    try:
        outputs = json.loads(text)
    except json.JSONDecodeError as exc:
        raise PromotionRefused(f"{label} is not JSON: {exc.msg} at line {exc.lineno}") from None
    images = outputs.get(IMAGES_OUTPUT) if isinstance(outputs, Mapping) else None
    if not isinstance(images, Mapping):
        raise PromotionRefused(
            f"{label} has no {IMAGES_OUTPUT!r} output (a map of service → image reference)"
        )
    return dict(images)


def from_outputs_file(path: Path) -> dict[str, Any]:
    try:
        text = path.read_text()
    except OSError as exc:
        raise PromotionRefused(f"cannot read {path}: {exc.strerror}") from None
    return from_outputs_json(text, str(path))


def from_stack(stack: str, root: Path) -> dict[str, Any]:
    result = subprocess.run(
        ["pulumi", "stack", "output", "--json", "--stack", stack],
        cwd=root,
        capture_output=True,
        text=True,
    )
    if result.returncode != 0:
        lines = [line for line in result.stderr.splitlines() if line.strip()] or ["no output"]
        raise PromotionRefused(f"pulumi stack output --stack {stack} failed: {lines[-1].strip()}")
    return from_outputs_json(result.stdout, f"the outputs of stack {stack!r}")


def from_environment_file(env: str, root: Path) -> dict[str, Any]:
    path = root / "environments" / f"{env}.yaml"
    if not path.is_file():
        raise PromotionRefused(f"unknown environment {env!r} (no environments/{env}.yaml)")
    services = YAML(typ="safe").load(path.read_text()).get("services") or {}
    return {name: (svc or {}).get("release") for name, svc in services.items()}


def source_images(env: str, root: Path, outputs: Path | None) -> tuple[dict[str, Any], str]:
    """(images by service, where they were read from): --outputs, else the stack, else the env file pins."""
    if outputs is not None:
        return from_outputs_file(outputs), str(outputs)
    if shutil.which("pulumi"):
        return from_stack(env, root), f"pulumi stack output --stack {env}"
    return from_environment_file(env, root), f"environments/{env}.yaml"


def check_digests(images: Mapping[str, Any], services: Iterable[str], where: str) -> dict[str, str]:
    """Each selected service's reference, refusing a missing one, a mutable tag or a malformed sha256."""
    checked = {}
    for name in services:
        ref = images.get(name)
        if not ref or not isinstance(ref, str):
            raise PromotionRefused(f"no image digest for {name} in {where}")
        if ref == BUILD:
            raise PromotionRefused(
                f"{name} is built from source in {where}, not pinned; pass --outputs with the stack outputs"
            )
        if PINNED_IMAGE.match(ref):
            checked[name] = ref
            continue
        digest = _DIGEST_PART.search(ref)
        if digest is None:
            raise PromotionRefused(f"{name}: {ref!r} in {where} is a mutable tag, not a sha256 digest")
        raise PromotionRefused(f"{name}: malformed sha256 digest {digest['hex']!r} in {where} (want 64 hex)")
    return checked
