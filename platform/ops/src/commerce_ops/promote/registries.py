"""Images promoted into an environment come from that environment's registry (`image_repository`).

A dev digest lives in dev's registry; prod pulls only from its own (the policy rule `image-from-environment-
registry` checks every workload image). So a promotion either finds the source references already in the target
repository, or copies each image by digest into it (`crane copy`, which keeps the digest: the same manifest
bytes) and writes the target reference; without `--copy-images` it refuses, naming the references.
"""

from __future__ import annotations

import shutil
import subprocess
from collections.abc import Mapping
from dataclasses import dataclass

from commerce_ops.promote import PromotionRefused

COPY_TOOL = "crane"


@dataclass(frozen=True)
class ImageCopy:
    service: str
    source: str
    target: str

    @property
    def command(self) -> list[str]:
        return [COPY_TOOL, "copy", self.source, self.target]


def split_reference(ref: str) -> tuple[str, str]:
    """`registry/path/users@sha256:…` → (`registry/path/users`, `sha256:…`)."""
    repository, _, digest = ref.partition("@")
    return repository, digest


def retarget(
    images: Mapping[str, str], target_repository: str, target: str
) -> tuple[dict[str, str], list[ImageCopy]]:
    """Each service's reference in `target`'s repository, and the copies that puts the images there."""
    refs, copies = {}, []
    for service, ref in images.items():
        repository, digest = split_reference(ref)
        wanted = f"{target_repository}/{service}@{digest}"
        refs[service] = wanted
        if repository != f"{target_repository}/{service}":
            copies.append(ImageCopy(service, ref, wanted))
    return refs, copies


def refuse_without_copy(copies: list[ImageCopy], target: str, target_repository: str) -> None:
    if copies:
        first = copies[0]
        more = f" (and {len(copies) - 1} more)" if len(copies) > 1 else ""
        raise PromotionRefused(
            f"{first.service}: {first.source} is outside {target}'s registry {target_repository}{more}; "
            f"pass --copy-images to copy them by digest ({COPY_TOOL} copy) and write {target}'s references"
        )


def copy_images(copies: list[ImageCopy]) -> None:
    """Copy every image by digest into the target registry, before anything is committed."""
    if copies and shutil.which(COPY_TOOL) is None:
        raise PromotionRefused(
            f"--copy-images needs {COPY_TOOL} on PATH (https://github.com/google/go-containerregistry)"
        )
    for copy in copies:
        result = subprocess.run(copy.command, capture_output=True, text=True)
        if result.returncode != 0:
            lines = [line for line in result.stderr.splitlines() if line.strip()] or ["failed"]
            raise PromotionRefused(f"{COPY_TOOL} copy {copy.source}: {lines[-1].strip()}")
