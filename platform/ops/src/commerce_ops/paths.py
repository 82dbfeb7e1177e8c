"""Where the repo is, for code that reads environments/, Pulumi.*.yaml or services/ from disk."""

from __future__ import annotations

import os
from functools import cache
from pathlib import Path


@cache
def repo_root() -> Path:
    """The checkout this code runs from: $COMMERCE_REPO_ROOT, else the nearest parent holding Pulumi.yaml."""
    if env := os.environ.get("COMMERCE_REPO_ROOT"):
        return Path(env).resolve()
    for candidate in (Path.cwd(), *Path.cwd().parents, *Path(__file__).resolve().parents):
        if (candidate / "Pulumi.yaml").is_file() and (candidate / "services").is_dir():
            return candidate
    raise RuntimeError("cannot find the repo root (no Pulumi.yaml above here); set COMMERCE_REPO_ROOT")
