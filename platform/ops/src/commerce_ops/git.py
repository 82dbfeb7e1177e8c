"""Running git for the tooling (previews, promotions) and the tests: git's output, or one line naming the command
and git's own last line."""

from __future__ import annotations

import subprocess
from pathlib import Path


class GitError(RuntimeError):
    pass


def last_line(text: str) -> str:
    lines = [line for line in text.strip().splitlines() if line.strip()]
    return lines[-1].strip() if lines else "no output"


def git(
    root: Path,
    *args: str,
    error: type[Exception] = GitError,
    brief: bool = False,
    check: bool = True,
    env: dict[str, str] | None = None,
) -> str:
    """`git ARGS` in `root`; its stdout, stripped. A failure raises `error("git ARGS: <git's last line>")`
    (`brief`: `git SUBCOMMAND: …`, for arguments too long to repeat, e.g. a commit message); `check=False`
    ignores it (clean-up that may find nothing to clean)."""
    result = subprocess.run(["git", *args], cwd=root, env=env, capture_output=True, text=True)
    if result.returncode != 0 and check:
        command = args[0] if brief else " ".join(args)
        raise error(f"git {command}: {last_line(result.stderr)}")
    return result.stdout.strip()
