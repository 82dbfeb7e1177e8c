"""`ops diff`: what a deploy of this change would do, from two offline renders (base ref vs working tree)."""

from __future__ import annotations

from enum import StrEnum
from pathlib import Path
from typing import Annotated

import typer


class Format(StrEnum):
    text = "text"
    markdown = "markdown"


def register(app: typer.Typer) -> None:
    @app.command("diff")
    def diff(
        envs: Annotated[list[str], typer.Argument(metavar="ENV...", help="Environment(s) to preview.")],
        base: Annotated[str, typer.Option(help="Git ref to compare the working tree against.")] = "HEAD",
        fmt: Annotated[
            Format, typer.Option("--format", help="text, or markdown for a PR comment.")
        ] = Format.text,
        output: Annotated[Path | None, typer.Option(help="Also write the report to this file.")] = None,
    ) -> None:
        """Preview what a deploy of this change would do.

        Resource-level create/update/replace/delete between the base ref and the working tree, offline.
        """
        from rich.console import Console

        from commerce_ops.preview.baseline import PreviewError
        from commerce_ops.preview.plans import plan_environments
        from commerce_ops.preview.report import to_markdown, to_text

        try:
            with Console(stderr=True).status(
                f"rendering {', '.join(envs)} at {base} and in the working tree"
            ):
                plans = plan_environments(envs, base)
        except PreviewError as exc:
            typer.echo(f"ops diff: {exc}", err=True)
            raise typer.Exit(1) from None
        report = to_markdown(plans) if fmt is Format.markdown else "\n\n".join(to_text(p) for p in plans)
        if output:
            output.parent.mkdir(parents=True, exist_ok=True)
            output.write_text(report if report.endswith("\n") else report + "\n")
        typer.echo(report.rstrip("\n"))
