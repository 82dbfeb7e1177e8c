"""Edit an environments/ file with ruamel.yaml round-trip: comments, key order and formatting are kept."""

from __future__ import annotations

import copy
import io
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from ruamel.yaml import YAML

from commerce_ops.promote import PromotionRefused

SIZING_KEYS = ("autoscaling", "resources")


@dataclass(frozen=True)
class ServiceChange:
    service: str
    old: str
    new: str
    sizing: tuple[str, ...] = ()  # sizing keys copied too (--include-sizing)


def _yaml() -> YAML:
    yaml = YAML()  # round-trip
    yaml.preserve_quotes = True
    yaml.width = 4096  # never re-wrap long lines (image references are long)
    yaml.indent(mapping=2, sequence=4, offset=2)
    return yaml


def _dump(data: Any) -> str:
    out = io.StringIO()
    _yaml().dump(data, out)
    return out.getvalue()


def rewrite_releases(
    text: str, label: str, images: Mapping[str, str], sizing_from: Mapping[str, Any] | None = None
) -> tuple[str, list[ServiceChange]]:
    """`text` with services.<name>.release set to `images[name]` (and sizing copied when `sizing_from`)."""
    data = _yaml().load(text)
    services = data.get("services") if isinstance(data, Mapping) else None
    if not isinstance(services, Mapping):
        raise PromotionRefused(f"{label} has no 'services' mapping")
    changes = []
    for name, ref in images.items():
        if name not in services:
            raise PromotionRefused(f"{label} has no service {name!r}")
        old = services[name]["release"]
        sized = []
        for key in SIZING_KEYS if sizing_from is not None else ():
            wanted = sizing_from.get(name, {}).get(key)
            if wanted is not None and services[name].get(key) != wanted:
                services[name][key] = copy.deepcopy(wanted)
                sized.append(key)
        if old != ref:
            services[name]["release"] = ref
        if old != ref or sized:
            changes.append(ServiceChange(name, old, ref, tuple(sized)))
    new_text = _dump(data)
    if not any(c.sizing for c in changes):
        _check_only_release_lines_changed(text, new_text, label)
    return new_text, changes


def _check_only_release_lines_changed(old: str, new: str, label: str) -> None:
    """Round-trip keeps formatting for the files we write; refuse rather than reformat one we don't."""
    old_lines, new_lines = old.splitlines(), new.splitlines()
    drift = len(old_lines) != len(new_lines) or any(
        a != b and not (a.lstrip().startswith("release:") and b.lstrip().startswith("release:"))
        for a, b in zip(old_lines, new_lines, strict=False)
    )
    if drift:
        raise PromotionRefused(
            f"rewriting {label} would reformat more than the release lines; not touching it"
        )


def load_sizing(text: str) -> dict[str, Any]:
    """services.<name>.{autoscaling,resources} of an environments/ file, as round-trip nodes (styles kept)."""
    services = _yaml().load(text).get("services") or {}
    return {name: {k: svc[k] for k in SIZING_KEYS if k in svc} for name, svc in services.items()}
