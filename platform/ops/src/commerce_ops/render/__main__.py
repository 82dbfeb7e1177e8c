"""`python -m commerce_ops.render <env> [--out DIR] [--repo-root DIR]`: render without the ops CLI.

Used to render another checkout (e.g. a git base ref in a worktree, with PYTHONPATH pointing into it).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from commerce_ops.render import RenderError, render_environment, write_render


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m commerce_ops.render")
    parser.add_argument("env", help="dev, prod or pr-<N>")
    parser.add_argument("--out", type=Path, help="output directory (default build/render/<env> in the repo)")
    parser.add_argument("--repo-root", type=Path, help="repo whose environments/ and Pulumi.*.yaml to render")
    args = parser.parse_args(argv)
    try:
        graph = render_environment(args.env, args.repo_root)
    except RenderError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    from commerce_ops.paths import repo_root

    out = args.out or (args.repo_root or repo_root()) / "build" / "render" / args.env
    write_render(graph, out)
    print(f"{args.env}: {len(graph['manifests'])} manifests, {len(graph['resources'])} resources → {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
