"""Where the repo is, for the tooling that reads environments/, Pulumi.*.yaml or services/ from disk."""

from __future__ import annotations

import os
from functools import cache
from pathlib import Path


def is_checkout(folder: Path) -> bool:
    return (folder / "Pulumi.yaml").is_file() and (folder / "services").is_dir()


@cache
def repo_root() -> Path:
    """The checkout to work on: $COMMERCE_REPO_ROOT, else the nearest folder at or above the working directory
    holding Pulumi.yaml and services/, else the checkout the program itself is in (its repo_root_default)."""
    if env := os.environ.get("COMMERCE_REPO_ROOT"):
        return Path(env).resolve()
    for candidate in (Path.cwd(), *Path.cwd().parents):
        if is_checkout(candidate):
            return candidate
    # Only here: importing the environments' schema (pydantic, yaml) costs `ops dev status` ~0.3 s otherwise.
    from commerce_platform.environments import repo_root_default

    if is_checkout(own := repo_root_default()):
        return own
    raise RuntimeError("cannot find the repo root (no Pulumi.yaml above here); set COMMERCE_REPO_ROOT")
