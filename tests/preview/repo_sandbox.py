"""A throw-away git clone of this repo to run `ops diff` / `ops promote` in, so the real tree is never touched.

Shared by tests/preview and tests/promote (the latter puts this folder on sys.path in its conftest).
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from commerce_ops.git import git

REPO = Path(__file__).resolve().parents[2]
OPS = Path(sys.executable).with_name("ops")


def clone_repo(dest: Path) -> Path:
    """Clone the committed HEAD of this repo into `dest` with a local identity for commits."""
    git(REPO, "clone", "--quiet", "--no-hardlinks", str(REPO), str(dest))
    git(dest, "switch", "--quiet", "-C", "main")  # even if detached
    for key, value in (("user.name", "ops test"), ("user.email", "ops-test@example.invalid")):
        git(dest, "config", key, value)
    return dest


def ops(
    clone: Path, *args: str, timeout: int = 600, path_first: Path | None = None
) -> subprocess.CompletedProcess[str]:
    """Run the `ops` CLI with the clone as working directory (and as the only repo root it may use);
    `path_first`: a folder of stand-in tools put first on PATH."""
    env = {k: v for k, v in os.environ.items() if k != "COMMERCE_REPO_ROOT"}
    if path_first is not None:
        env["PATH"] = f"{path_first}{os.pathsep}{env['PATH']}"
    env["NO_COLOR"] = "1"
    env["COLUMNS"] = "200"
    return subprocess.run(
        [str(OPS), *args], cwd=clone, env=env, capture_output=True, text=True, timeout=timeout
    )
