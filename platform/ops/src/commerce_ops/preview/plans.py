"""The one entry point the CLI and `ops promote` use: environments + base ref → plans."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from commerce_ops.paths import repo_root
from commerce_ops.preview.baseline import render_both
from commerce_ops.preview.changes import Plan, diff_graphs


def plan_environments(envs: Sequence[str], base_ref: str, root: Path | None = None) -> list[Plan]:
    """Render each environment at `base_ref` and at the working tree of `root` and diff them."""
    root = root or repo_root()
    sha, graphs, notes = render_both(root, base_ref, envs)
    base_label = f"{base_ref} ({sha[:7]})" if base_ref != sha else sha[:7]
    return [
        diff_graphs(
            *graphs[env],
            base_label=base_label,
            head_label="working tree",
            notes=(notes[env],) if env in notes else (),
        )
        for env in envs
    ]
