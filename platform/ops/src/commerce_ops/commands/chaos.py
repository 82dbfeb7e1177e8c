"""`ops chaos`: the resilience scenarios (the same functions tests/chaos runs), with a table of every check."""

from __future__ import annotations

from typing import Annotated

import typer


def register(app: typer.Typer) -> None:
    @app.command("chaos")
    def chaos(
        only: Annotated[
            list[str] | None,
            typer.Option(
                "--only", help="Run only these scenarios: redis, postgres, sigterm, payments, schemathesis."
            ),
        ] = None,
    ) -> None:
        """Fault injection: do the invariants hold?

        Runs against a throw-away platform (own Postgres, Redis, ports); exit 1 if an invariant broke.
        """
        from rich.console import Console
        from rich.table import Table

        from commerce_ops.chaos.suite import run_suite
        from commerce_ops.local.runtime import LocalPlatformError

        try:
            results = run_suite(only, echo=typer.echo)
        except (ValueError, LocalPlatformError) as exc:
            typer.echo(f"ops chaos: {exc}", err=True)
            raise typer.Exit(1) from None
        table = Table(title="ops chaos")
        for column in ("scenario", "check", "result", "detail"):
            table.add_column(column, overflow="fold")
        for result in results:
            for i, check in enumerate(result.checks):
                verdict = "ok" if check.ok else ("FAIL" if check.required else "note")
                table.add_row(
                    f"{result.name} ({result.seconds:.0f} s)" if i == 0 else "",
                    check.name,
                    verdict,
                    check.detail,
                )
            table.add_row("", "client saw", "", result.load, end_section=True)
        Console().print(table)  # columns fold to the terminal's width
        failed = [r.name for r in results if not r.passed]
        typer.echo(f"ops chaos: {len(results) - len(failed)} passed, {len(failed)} failed")
        raise typer.Exit(1 if failed else 0)
