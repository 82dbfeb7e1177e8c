"""`ops dev top` and `ops dev trace`: the local platform's metrics and traces (see commerce_ops.local.observe).

Registered under the `dev` group that commands/dev.py creates (modules register in name order).
"""

from __future__ import annotations

import time
from typing import Annotated

import typer
from rich.console import Console
from rich.live import Live
from rich.table import Table

from commerce_ops.commands.dev import LocalDir
from commerce_platform import catalogue


def _dev_group(app: typer.Typer) -> typer.Typer:
    for group in app.registered_groups:
        if group.name == "dev":
            return group.typer_instance
    raise RuntimeError("commands/dev.py registers the `dev` group first")


def _ms(value: float | None) -> str:
    return "-" if value is None else f"{value:.1f}"


def _table(rows, interval: float) -> Table:
    table = Table(title=f"local platform, last {interval:g}s (probes excluded)", title_justify="left")
    for column in ("service", "req/s", "p50 ms", "p99 ms", "5xx/s", "in flight", "db pool", "metrics"):
        table.add_column(column, justify="left" if column in ("service", "metrics") else "right")
    for r in rows:
        if not r.up:
            table.add_row(r.service, "[red]down[/]", "", "", "", "", "", r.url)
            continue
        errors = f"[red]{r.errors_per_s:.1f}[/]" if r.errors_per_s else "0"
        table.add_row(
            r.service,
            f"{r.rps:.1f}",
            _ms(r.p50_ms),
            _ms(r.p99_ms),
            errors,
            f"{r.in_flight:.0f}",
            r.pool,
            r.url,
        )
    return table


def register(app: typer.Typer) -> None:
    dev = _dev_group(app)

    @dev.command("top")
    def top(
        local_dir: LocalDir = None,
        interval: Annotated[float, typer.Option(min=0.2, help="Seconds between scrapes.")] = 2.0,
        count: Annotated[
            int, typer.Option(min=0, help="Stop after this many refreshes (0: until Ctrl-C).")
        ] = 0,
    ) -> None:
        """Live per-service table from the services' own /metrics: req/s, p50/p99, 5xx, in flight, pool use."""
        import httpx

        from commerce_ops.local import observe
        from commerce_ops.local.runtime import LocalConfig, LocalPlatform

        platform = LocalPlatform(LocalConfig(local_dir=local_dir))
        if not platform.running():
            typer.echo("ops dev top: nothing running; start it with `ops dev up`")
            raise typer.Exit(1)
        urls = {s.name: platform.metrics_url(s.name) for s in catalogue.SERVICES}
        console = Console()
        with httpx.Client(timeout=2) as http:

            def snapshot():
                return {name: observe.scrape(http, url) for name, url in urls.items()}, time.monotonic()

            before, at = snapshot()
            shown = 0
            try:
                with Live(console=console, auto_refresh=False) as live:
                    while count == 0 or shown < count:
                        time.sleep(interval)
                        after, now = snapshot()
                        rows = [
                            observe.row(name, urls[name], before[name], after[name], now - at)
                            for name in urls
                        ]
                        live.update(_table(rows, interval), refresh=True)
                        before, at = after, now
                        shown += 1
            except KeyboardInterrupt:
                pass

    @dev.command("trace")
    def trace(
        request_id: Annotated[str, typer.Argument(help="An X-Request-ID (from a response or a log line).")],
        local_dir: LocalDir = None,
    ) -> None:
        """One request's trace across the gateway and the services, from the local span files."""
        from commerce_ops.local import observe
        from commerce_ops.local.layout import LocalLayout

        layout = LocalLayout.resolve(local_dir)
        logs = sorted(layout.logs_dir.glob("*.log"))
        trace_ids = observe.trace_ids_for(request_id, logs)
        if not trace_ids:
            typer.echo(
                f"ops dev trace: no log line in {layout.logs_dir} has request id {request_id!r} with a trace id "
                "(is tracing on? `ops dev up` turns it on)"
            )
            raise typer.Exit(1)
        span_files = sorted(layout.traces_dir.glob("*.jsonl"))
        console = Console()
        for trace_id in trace_ids:
            spans = observe.spans_of(trace_id, span_files)
            table = Table(title=f"trace {trace_id} (request {request_id})", title_justify="left")
            for column in ("service", "span", "kind", "start ms", "ms"):
                table.add_column(column, justify="right" if "ms" in column else "left")
            origin = spans[0].start if spans else None
            for depth, span in observe.tree(spans):
                offset = (span.start - origin).total_seconds() * 1000
                table.add_row(
                    span.service,
                    "  " * depth + span.label,
                    span.kind,
                    f"{offset:.1f}",
                    f"{span.duration_ms:.1f}",
                )
            console.print(table)
            console.print(
                f"{len(spans)} spans from {len({s.service for s in spans})} processes in {layout.traces_dir}"
            )
