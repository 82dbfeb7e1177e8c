"""`ops render <env>`: the platform program under the mock monitor → build/render/<env>/."""

from __future__ import annotations

import time
from collections import Counter
from pathlib import Path
from typing import Annotated

import typer


def output_lines(outputs: dict, indent: str = "") -> list[str]:
    """The stack outputs as `key: value` lines, a mapping's entries indented under its key (never a dict's repr)."""
    lines = []
    for key, value in outputs.items():
        if isinstance(value, dict):
            lines.append(f"{indent}[bold]{key}[/bold]:")
            lines += output_lines(value, indent + "  ")
        elif isinstance(value, list):
            lines.append(f"{indent}[bold]{key}[/bold]: {', '.join(map(str, value))}")
        else:
            lines.append(f"{indent}[bold]{key}[/bold]: {value}")
    return lines


def register(app: typer.Typer) -> None:
    @app.command("render")
    def render(
        env: Annotated[str, typer.Argument(help="dev, prod or pr-<N>")],
        out: Annotated[
            Path | None, typer.Option(help="output directory (default build/render/<env>)")
        ] = None,
    ) -> None:
        """Render an environment offline.

        Writes its manifests (validated, secrets redacted) and the resource graph; prints a summary.
        """
        from rich.console import Console
        from rich.table import Table

        from commerce_ops.paths import repo_root
        from commerce_ops.render import RenderError, render_environment, write_render

        console = Console()
        started = time.perf_counter()
        try:
            with Console(stderr=True).status(f"rendering {env} under the mock monitor"):
                graph = render_environment(env)
        except RenderError as exc:
            Console(stderr=True).print(f"[red]error:[/red] {exc}", soft_wrap=True, highlight=False)
            raise typer.Exit(1) from None
        target = write_render(graph, out or repo_root() / "build" / "render" / env)
        elapsed = time.perf_counter() - started

        kinds = Counter(m["object"]["kind"] for m in graph["manifests"])
        table = Table(
            title=f"{env}: {len(graph['manifests'])} manifests, {len(graph['resources'])} resources"
        )
        table.add_column("kind")
        table.add_column("count", justify="right")
        for kind, count in sorted(kinds.items()):
            table.add_row(kind, str(count))
        console.print(table)
        for line in output_lines(graph["outputs"]):
            console.print(line, soft_wrap=True, highlight=False)
        console.print(
            f"valid (kubernetes-validate strict, k8s {graph['k8s_version']}) → {target} in {elapsed:.2f}s",
            highlight=False,
        )
