"""Render environments at a git ref and at the working tree, each side with its own code.

The base side is checked out into a temporary `git worktree`, and both sides run `python -m
commerce_ops.render` in a subprocess whose PYTHONPATH points at that tree's `platform/src`, `platform/ops/src`
and `services/*/src` (a tree from before the split into program and tooling runs `commerce_platform.render`), so a change to the platform code shows up in the diff just like a change to environments/.

A render is a function of the tree (code, environments, stack files, lock; the mock monitor is deterministic), so
graphs are cached by the git ids of those inputs (`.local/render-cache/`, or the folder `OPS_RENDER_CACHE`
names): a side whose inputs were rendered before is not rendered again, and when the working tree's inputs equal
the base's (e.g. `ops diff --base HEAD` on a clean tree), one render serves both sides and no worktree is checked
out. The key holds nothing of the checkout itself, so clones and worktrees that share one `OPS_RENDER_CACHE` share
their renders: identical inputs are rendered once, whichever checkout asked first.
"""

from __future__ import annotations

import contextlib
import hashlib
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

from commerce_ops.git import git as run_git
from commerce_ops.git import last_line

RENDER_TIMEOUT_S = 600
# What a render reads; anything else in the tree (tests, docs, CI files) can't change a graph.
RENDER_INPUTS = (
    "platform",
    "services",
    "environments",
    "Pulumi.yaml",
    "Pulumi.dev.yaml",
    "Pulumi.prod.yaml",
    "pyproject.toml",
    "uv.lock",
)
CACHE_DIR = Path(".local") / "render-cache"  # relative to the repo root, unless CACHE_ENV names a folder
CACHE_ENV = "OPS_RENDER_CACHE"
CACHE_ENTRIES = 40  # newest kept; a graph is a few hundred kB
_CACHE_VERSION = "1"


class PreviewError(Exception):
    """A one-line reason the preview could not be produced."""


@dataclass(frozen=True)
class Side:
    root: Path
    label: str


def git(root: Path, *args: str, **options: Any) -> str:
    """commerce_ops.git.git, failing as a PreviewError."""
    return run_git(root, *args, error=PreviewError, **options)


def code_path(root: Path) -> str:
    """PYTHONPATH for running `root`'s own platform and service code instead of the installed copies."""
    paths = [
        root / "platform" / "src",
        root / "platform" / "ops" / "src",
        *sorted((root / "services").glob("*/src")),
    ]
    inherited = os.environ.get("PYTHONPATH")
    return os.pathsep.join([*(str(p) for p in paths), *([inherited] if inherited else [])])


def render_module(root: Path) -> str:
    """The render entry point of `root`'s layout: the tooling package, or the one package before the split."""
    return (
        "commerce_ops.render" if (root / "platform" / "ops" / "src").is_dir() else "commerce_platform.render"
    )


def render_graph(root: Path, env: str, out_dir: Path) -> dict[str, Any]:
    """`python -m commerce_ops.render <env> --out <out_dir>` with `root`'s code; returns graph.json."""
    # COMMERCE_REPO_ROOT pins the render to `root` even when the caller's environment points elsewhere.
    environ = {**os.environ, "PYTHONPATH": code_path(root), "COMMERCE_REPO_ROOT": str(root)}
    try:
        result = subprocess.run(
            [sys.executable, "-m", render_module(root), env, "--out", str(out_dir)],
            cwd=root,
            env=environ,
            capture_output=True,
            text=True,
            timeout=RENDER_TIMEOUT_S,
        )
    except subprocess.TimeoutExpired:
        raise PreviewError(f"render of {env!r} in {root} took longer than {RENDER_TIMEOUT_S}s") from None
    if result.returncode != 0:
        raise PreviewError(f"render of {env!r} failed: {last_line(result.stderr or result.stdout)}")
    return json.loads((out_dir / "graph.json").read_text())


def has_environment(root: Path, ref: str, env: str) -> bool:
    """Whether `env` has a definition at `ref` (a new environment diffs against an empty graph)."""
    check = subprocess.run(
        ["git", "cat-file", "-e", f"{ref}:environments/{env}.yaml"], cwd=root, capture_output=True
    )
    return check.returncode == 0


def resolve(root: Path, ref: str) -> str:
    """The full sha of commit `ref`."""
    found = subprocess.run(
        ["git", "rev-parse", "--verify", "--quiet", f"{ref}^{{commit}}"],
        cwd=root,
        capture_output=True,
        text=True,
    )
    sha = found.stdout.strip() if ref and found.returncode == 0 else ""
    if not sha:
        raise PreviewError(f"unknown git ref {ref!r}")
    return sha


@contextmanager
def worktree_at(root: Path, ref: str) -> Iterator[tuple[Path, str]]:
    """A detached temporary worktree of `ref`; yields (path, full sha) and always removes it."""
    sha = resolve(root, ref)
    with tempfile.TemporaryDirectory(prefix="ops-diff-") as tmp:
        path = Path(tmp) / "base"
        git(root, "worktree", "add", "--detach", "--quiet", str(path), sha)
        try:
            yield path, sha
        finally:
            git(root, "worktree", "remove", "--force", str(path), check=False)
            git(root, "worktree", "prune", check=False)


def empty_graph(env: str) -> dict[str, Any]:
    return {"environment": env, "resources": []}


def _input_ids(root: Path, tree: str) -> str:
    """The git object ids of the render's inputs in `tree` (a commit or tree id), one line each."""
    return git(root, "ls-tree", tree, "--", *RENDER_INPUTS)


def working_tree_id(root: Path) -> str:
    """The tree id the working tree would commit now (tracked and untracked, ignored files left out), from a
    throw-away index: the real index and the working tree are not touched."""
    with tempfile.TemporaryDirectory(prefix="ops-index-") as tmp:
        index = {**os.environ, "GIT_INDEX_FILE": str(Path(tmp) / "index")}

        git(root, "read-tree", "HEAD", env=index, brief=True)
        git(
            root, "add", "-A", "--", *(p for p in RENDER_INPUTS if (root / p).exists()), env=index, brief=True
        )
        return git(root, "write-tree", env=index, brief=True)


def cache_key(root: Path, tree: str, env: str) -> str:
    digest = hashlib.sha256(f"{_CACHE_VERSION}\n{env}\n{_input_ids(root, tree)}".encode())
    return digest.hexdigest()[:32]


def cache_dir(root: Path) -> Path:
    """The render cache folder: $OPS_RENDER_CACHE (shared by every checkout that names it), else the repo's
    .local/render-cache."""
    shared = os.environ.get(CACHE_ENV)
    return Path(shared).expanduser().resolve() if shared else root / CACHE_DIR


def _cached(root: Path, key: str) -> dict[str, Any] | None:
    path = cache_dir(root) / f"{key}.json"
    try:
        graph = json.loads(path.read_text())
    except (OSError, ValueError):
        return None
    os.utime(path)  # recently used: kept longest
    return graph


def _store(root: Path, key: str, graph: dict[str, Any]) -> None:
    folder = cache_dir(root)
    folder.mkdir(parents=True, exist_ok=True)
    partial = folder / f"{key}.json.{os.getpid()}"
    partial.write_text(json.dumps(graph))
    partial.replace(folder / f"{key}.json")  # atomic: a concurrent reader sees all or nothing
    entries = sorted(folder.glob("*.json"), key=lambda p: p.stat().st_mtime, reverse=True)
    for old in entries[CACHE_ENTRIES:]:
        old.unlink(missing_ok=True)


def render_both(
    root: Path, base_ref: str, envs: Sequence[str]
) -> tuple[str, dict[str, tuple[dict[str, Any], dict[str, Any]]], dict[str, str]]:
    """Render every env at `base_ref` and at the working tree (two processes at a time), from the render cache
    where the inputs were rendered before.

    Returns (base sha, {env: (base graph, head graph)}, {env: note}).
    """
    sha = resolve(root, base_ref)
    head_tree = working_tree_id(root)
    notes: dict[str, str] = {}
    keys: dict[tuple[str, str], str] = {}
    for env in envs:
        keys[env, "head"] = cache_key(root, head_tree, env)
        if has_environment(root, sha, env) or not (root / "environments" / f"{env}.yaml").exists():
            keys[env, "base"] = cache_key(root, sha, env)
        else:
            notes[env] = f"`{env}` does not exist at the base ref: every resource is new."
    graphs_by_key = {key: graph for key in set(keys.values()) if (graph := _cached(root, key)) is not None}
    todo = {key: (env, side) for (env, side), key in keys.items() if key not in graphs_by_key}
    if todo:
        with contextlib.ExitStack() as stack:
            out = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="ops-render-")))
            base_root = None
            if any(side == "base" and key not in _head_keys(keys) for key, (_, side) in todo.items()):
                base_root, _ = stack.enter_context(worktree_at(root, sha))
            with ThreadPoolExecutor(max_workers=2) as pool:
                jobs = {}
                for key, (env, side) in todo.items():
                    # A base key equal to a head key is rendered once, from the working tree.
                    tree = root if side == "head" or key in _head_keys(keys) else base_root
                    jobs[key] = pool.submit(render_graph, tree, env, out / key)
                for key, job in jobs.items():
                    graphs_by_key[key] = job.result()
                    _store(root, key, graphs_by_key[key])
    graphs = {
        env: (
            graphs_by_key[keys[env, "base"]] if (env, "base") in keys else empty_graph(env),
            graphs_by_key[keys[env, "head"]],
        )
        for env in envs
    }
    return sha, graphs, notes


def _head_keys(keys: dict[tuple[str, str], str]) -> set[str]:
    return {key for (_, side), key in keys.items() if side == "head"}
