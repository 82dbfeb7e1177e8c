"""Render environments at a git ref and at the working tree, each side with its own code.

The base side is checked out into a temporary `git worktree`, and both sides run `python -m
commerce_platform.render` in a subprocess whose PYTHONPATH points at that tree's `platform/src` and
`services/*/src`, so a change to the platform code shows up in the diff just like a change to environments/.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
from collections.abc import Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

RENDER_TIMEOUT_S = 600


class PreviewError(Exception):
    """A one-line reason the preview could not be produced."""


@dataclass(frozen=True)
class Side:
    root: Path
    label: str


def git(root: Path, *args: str) -> str:
    result = subprocess.run(["git", *args], cwd=root, capture_output=True, text=True)
    if result.returncode != 0:
        raise PreviewError(f"git {' '.join(args)}: {_last_line(result.stderr)}")
    return result.stdout.strip()


def repo_root(start: Path | None = None) -> Path:
    return Path(git(start or Path.cwd(), "rev-parse", "--show-toplevel"))


def _last_line(text: str) -> str:
    lines = [line for line in text.strip().splitlines() if line.strip()]
    return lines[-1].strip() if lines else "no output"


def code_path(root: Path) -> str:
    """PYTHONPATH for running `root`'s own platform and service code instead of the installed copies."""
    paths = [root / "platform" / "src", *sorted((root / "services").glob("*/src"))]
    inherited = os.environ.get("PYTHONPATH")
    return os.pathsep.join([*(str(p) for p in paths), *([inherited] if inherited else [])])


def render_graph(root: Path, env: str, out_dir: Path) -> dict[str, Any]:
    """`python -m commerce_platform.render <env> --out <out_dir>` with `root`'s code; returns graph.json."""
    # COMMERCE_REPO_ROOT pins the render to `root` even when the caller's environment points elsewhere.
    environ = {**os.environ, "PYTHONPATH": code_path(root), "COMMERCE_REPO_ROOT": str(root)}
    try:
        result = subprocess.run(
            [sys.executable, "-m", "commerce_platform.render", env, "--out", str(out_dir)],
            cwd=root,
            env=environ,
            capture_output=True,
            text=True,
            timeout=RENDER_TIMEOUT_S,
        )
    except subprocess.TimeoutExpired:
        raise PreviewError(f"render of {env!r} in {root} took longer than {RENDER_TIMEOUT_S}s") from None
    if result.returncode != 0:
        raise PreviewError(f"render of {env!r} failed: {_last_line(result.stderr or result.stdout)}")
    return json.loads((out_dir / "graph.json").read_text())


def has_environment(root: Path, ref: str, env: str) -> bool:
    """Whether `env` has a definition at `ref` (a new environment diffs against an empty graph)."""
    check = subprocess.run(
        ["git", "cat-file", "-e", f"{ref}:environments/{env}.yaml"], cwd=root, capture_output=True
    )
    return check.returncode == 0


@contextmanager
def worktree_at(root: Path, ref: str) -> Iterator[tuple[Path, str]]:
    """A detached temporary worktree of `ref`; yields (path, full sha) and always removes it."""
    found = subprocess.run(
        ["git", "rev-parse", "--verify", "--quiet", f"{ref}^{{commit}}"],
        cwd=root,
        capture_output=True,
        text=True,
    )
    sha = found.stdout.strip() if ref and found.returncode == 0 else ""
    if not sha:
        raise PreviewError(f"unknown git ref {ref!r}")
    with tempfile.TemporaryDirectory(prefix="ops-diff-") as tmp:
        path = Path(tmp) / "base"
        git(root, "worktree", "add", "--detach", "--quiet", str(path), sha)
        try:
            yield path, sha
        finally:
            subprocess.run(["git", "worktree", "remove", "--force", str(path)], cwd=root, capture_output=True)
            subprocess.run(["git", "worktree", "prune"], cwd=root, capture_output=True)


def empty_graph(env: str) -> dict[str, Any]:
    return {"environment": env, "resources": []}


def render_both(
    root: Path, base_ref: str, envs: Sequence[str]
) -> tuple[str, dict[str, tuple[dict[str, Any], dict[str, Any]]], dict[str, str]]:
    """Render every env at `base_ref` and at the working tree (two processes at a time).

    Returns (base sha, {env: (base graph, head graph)}, {env: note}).
    """
    with (
        worktree_at(root, base_ref) as (base_root, sha),
        tempfile.TemporaryDirectory(prefix="ops-render-") as out,
    ):
        jobs: dict[tuple[str, str], Any] = {}
        notes: dict[str, str] = {}
        with ThreadPoolExecutor(max_workers=2) as pool:
            for env in envs:
                jobs[env, "head"] = pool.submit(render_graph, root, env, Path(out) / "head" / env)
                if has_environment(root, sha, env) or not (root / "environments" / f"{env}.yaml").exists():
                    jobs[env, "base"] = pool.submit(render_graph, base_root, env, Path(out) / "base" / env)
                else:
                    notes[env] = f"`{env}` does not exist at the base ref: every resource is new."
            graphs = {
                env: (
                    jobs[env, "base"].result() if (env, "base") in jobs else empty_graph(env),
                    jobs[env, "head"].result(),
                )
                for env in envs
            }
        return sha, graphs, notes
