"""`ops bench`: throughput, latency and memory of the services, as ratios measured in one run → BENCHMARKS.md."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer


def register(app: typer.Typer) -> None:
    @app.command("bench")
    def bench(
        seconds: Annotated[float, typer.Option(min=1, max=60, help="Measured seconds per row.")] = 10,
        warmup: Annotated[float, typer.Option(min=1, max=30, help="Warm-up seconds before each row.")] = 2,
        connections: Annotated[int, typer.Option(min=1, max=256, help="wrk connections.")] = 32,
        environment: Annotated[
            str, typer.Option(help="Environment whose settings and memory requests apply.")
        ] = "prod",
        log_level: Annotated[str, typer.Option(help="LOG_LEVEL of the services during the run.")] = "WARNING",
        output: Annotated[
            Path | None, typer.Option(help="Markdown file to update (default: BENCHMARKS.md).")
        ] = None,
        write: Annotated[bool, typer.Option(help="Write the results into the markdown file.")] = True,
        database_url: Annotated[
            str | None,
            typer.Option(
                help="Postgres admin URL to run on (default: an embedded Postgres of the run's own)."
            ),
        ] = None,
        redis_url: Annotated[
            str | None, typer.Option(help="Redis URL to run on, flushed (default: an embedded Redis).")
        ] = None,
    ) -> None:
        """Benchmark the services; update BENCHMARKS.md.

        Throughput, latency and memory (about 2-3 minutes); rewrites the services section of BENCHMARKS.md.
        """
        from asyncpg import PostgresError
        from redis.exceptions import RedisError

        from commerce_ops.bench.bounds import BoundError
        from commerce_ops.bench.lab import LabError
        from commerce_ops.bench.report import render_section, write_section
        from commerce_ops.bench.runner import default_output, run_bench
        from commerce_ops.bench.workload import WorkloadError
        from commerce_ops.bench.wrk import WrkError
        from commerce_ops.local.ports import PortInUseError
        from commerce_ops.local.runtime import LocalPlatformError

        try:
            run = run_bench(
                seconds=seconds,
                warmup=warmup,
                connections=connections,
                environment=environment,
                log_level=log_level.upper(),
                database_url=database_url,
                redis_url=redis_url,
                echo=typer.echo,
            )
        except (
            BoundError,
            WrkError,
            LabError,
            WorkloadError,
            LocalPlatformError,
            PortInUseError,
            OSError,
            PostgresError,
            RedisError,
        ) as exc:
            typer.echo(f"ops bench: {exc}", err=True)
            raise typer.Exit(1) from None
        section = render_section(run)
        typer.echo("")
        typer.echo(section)
        if write:
            target = output or default_output()
            write_section(target, section)
            typer.echo(f"\nops bench: wrote the services section of {target}")
