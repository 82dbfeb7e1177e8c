"""A throw-away git clone of this repo to run `ops diff` / `ops promote` in, so the real tree is never touched.

Shared by tests/preview and tests/promote (the latter puts this folder on sys.path in its conftest).

Every clone is of the same commit, so their renders have the same inputs: `ops` runs here with one render cache
for the whole test session (OPS_RENDER_CACHE, keyed by the git ids of the render's inputs), and a base rendered
for one clone is read back by the next instead of being rendered again in a subprocess.
"""

from __future__ import annotations

import atexit
import contextlib
import functools
import os
import shutil
import subprocess
import sys
import tempfile
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


@functools.cache
def shared_render_cache() -> Path:
    """The session's render cache folder (created on first use, deleted when the process ends)."""
    folder = Path(tempfile.mkdtemp(prefix="ops-test-render-cache-"))
    atexit.register(shutil.rmtree, folder, ignore_errors=True)
    return folder


def _environment(path_first: Path | None, shared_cache: bool) -> dict[str, str | None]:
    """What `ops` gets on top of this process's environment (None: removed)."""
    env: dict[str, str | None] = {"COMMERCE_REPO_ROOT": None, "NO_COLOR": "1", "COLUMNS": "200"}
    env["OPS_RENDER_CACHE"] = str(shared_render_cache()) if shared_cache else None
    if path_first is not None:
        env["PATH"] = f"{path_first}{os.pathsep}{os.environ['PATH']}"
    return env


def ops(
    clone: Path,
    *args: str,
    timeout: int = 600,
    path_first: Path | None = None,
    shared_cache: bool = True,
) -> subprocess.CompletedProcess[str]:
    """Run the `ops` CLI with the clone as working directory (and as the only repo root it may use);
    `path_first`: a folder of stand-in tools put first on PATH; `shared_cache`: renders go to the session's
    render cache (False: the clone's own .local/render-cache, the default without OPS_RENDER_CACHE)."""
    env = {k: v for k, v in (os.environ | _environment(path_first, shared_cache)).items() if v is not None}
    return subprocess.run(
        [str(OPS), *args], cwd=clone, env=env, capture_output=True, text=True, timeout=timeout
    )


def ops_in_process(
    clone: Path, *args: str, path_first: Path | None = None, shared_cache: bool = True
) -> subprocess.CompletedProcess[str]:
    """`ops(...)` through the CLI's click app in this process (same working directory, environment and exit
    code; renders still run in their own processes), for tests whose subject is what a command does rather than
    its process: each command keeps tests that run the real `ops` executable. An exception the command does not
    turn into an exit code is raised here, where a process would have printed its traceback."""
    from typer.testing import CliRunner

    from commerce_ops.cli import app
    from commerce_ops.paths import repo_root

    repo_root.cache_clear()  # found again from the working directory, as a new process would
    try:
        with contextlib.chdir(clone):
            result = CliRunner().invoke(app, list(args), env=_environment(path_first, shared_cache))
    finally:
        repo_root.cache_clear()
    if result.exception is not None and not isinstance(result.exception, SystemExit):
        raise result.exception
    return subprocess.CompletedProcess(["ops", *args], result.exit_code, result.stdout, result.stderr)
