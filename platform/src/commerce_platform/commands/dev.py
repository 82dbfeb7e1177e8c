"""`ops dev up/down/status/logs`: the whole platform on this machine (see commerce_platform.local)."""

from __future__ import annotations

import signal
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import psutil
import typer
from rich.console import Console
from rich.table import Table

from commerce_platform import catalogue
from commerce_platform.local.layout import LOCAL_DIR_ENV

if TYPE_CHECKING:
    from commerce_platform.local.runtime import LocalPlatform

# The runtime (asyncpg, redis, httpx, pgserver) is imported inside the commands, so other `ops` commands
# don't pay for it at start-up.

LocalDir = Annotated[
    Path | None,
    typer.Option(
        "--local-dir", envvar=LOCAL_DIR_ENV, help="State folder (data, keys, logs). Default: <repo>/.local."
    ),
]


def _status_table(platform: LocalPlatform) -> Table:
    table = Table(title="local platform", title_justify="left")
    for column in ("service", "url", "pid", "ready"):
        table.add_column(column)
    for row in platform.status():
        ready = (
            "[green]ready[/]" if row["ready"] else ("[yellow]starting[/]" if row["alive"] else "[red]down[/]")
        )
        table.add_row(row["name"], row["url"] or "", str(row["pid"] or "-"), ready)
    return table


def _print_welcome(console: Console, platform: LocalPlatform) -> None:
    console.print(_status_table(platform))
    console.print(
        f"gateway: [bold]{platform.gateway_url}[/]   (routes "
        + ", ".join(p for s in catalogue.SERVICES for p in s.public_prefixes)
        + ")"
    )
    for spec in catalogue.SERVICES:
        console.print(f"  {spec.name:<10} API docs: {platform.url(spec.name)}/docs")
    for spec in catalogue.SERVICES:
        console.print(f"  {spec.name:<10} metrics:  {platform.metrics_url(spec.name)}")
    console.print(
        f"live table: [bold]ops dev top[/]; one request's trace: [bold]ops dev trace <request-id>[/]"
        f"   (spans in {platform.layout.traces_dir})"
    )
    console.print(
        f"admin login: [bold]{platform.admin_username}[/] / [bold]{platform.secrets.admin_password}[/]"
        f"   (kept in {platform.layout.secrets_file})"
    )


def _raise_keyboard_interrupt(signum, frame) -> None:
    raise KeyboardInterrupt


def register(app: typer.Typer) -> None:
    dev = typer.Typer(
        help="Run the whole platform locally: embedded Postgres/Redis, four services, a gateway.",
        no_args_is_help=True,
    )
    app.add_typer(dev, name="dev")

    @dev.command("up")
    def up(
        detach: Annotated[
            bool, typer.Option("--detach", "-d", help="Return once everything is ready.")
        ] = False,
        port_offset: Annotated[
            int,
            typer.Option(
                envvar="OPS_PORT_OFFSET", help="Added to every port (gateway 8000, services 8001-8004)."
            ),
        ] = 0,
        local_dir: LocalDir = None,
        database_url: Annotated[
            str | None,
            typer.Option(
                envvar="DATABASE_URL",
                show_default=False,
                help="Admin URL of an existing Postgres (default: embedded).",
            ),
        ] = None,
        redis_url: Annotated[
            str | None,
            typer.Option(
                envvar="REDIS_URL", show_default=False, help="URL of an existing Redis (default: embedded)."
            ),
        ] = None,
        db_prefix: Annotated[
            str,
            typer.Option(envvar="OPS_DB_PREFIX", help="Prefix for each service's database and login name."),
        ] = "",
        production_like: Annotated[
            bool, typer.Option(help="uvloop + httptools, access log off (as for benchmarks).")
        ] = False,
        seed: Annotated[bool, typer.Option(help="Create demo products when the inventory is empty.")] = True,
    ) -> None:
        """Start Postgres, Redis, the four services and the gateway; follow their logs (Ctrl-C stops all)."""
        from commerce_platform.local.logs import LogFollower
        from commerce_platform.local.runtime import LocalConfig, LocalPlatform, LocalPlatformError

        console = Console(log_path=False)
        platform = LocalPlatform(
            LocalConfig(
                local_dir=local_dir,
                port_offset=port_offset,
                database_url=database_url or None,
                redis_url=redis_url or None,
                db_prefix=db_prefix,
                production_like=production_like,
                seed=seed,
            )
        )
        # `kill <ops pid>` and a closed terminal stop the platform like Ctrl-C does.
        signal.signal(signal.SIGTERM, _raise_keyboard_interrupt)
        signal.signal(signal.SIGHUP, _raise_keyboard_interrupt)
        try:
            with console.status("starting the local platform") as spinner:

                def progress(message: str) -> None:
                    spinner.update(message)
                    console.log(message)

                platform.start(progress=progress)
        except LocalPlatformError as exc:
            console.print(f"[bold red]ops dev up:[/] {exc}", highlight=False)
            raise typer.Exit(1) from None
        except KeyboardInterrupt:
            console.print("interrupted; everything started was stopped")
            raise typer.Exit(130) from None
        _print_welcome(console, platform)
        if detach:
            console.print("running in the background: `ops dev status`, `ops dev logs`, `ops dev down`")
            return
        console.print("following logs; Ctrl-C stops everything")
        follower = LogFollower(
            {name: platform.layout.log_file(name) for name in platform.state.processes}, console
        )
        exited: set[str] = set()

        def keep_going() -> bool:
            if not platform.layout.state_file.exists():  # `ops dev down` from another terminal
                return False
            alive = platform.running()
            for name in sorted(platform.state.processes.keys() - set(alive) - exited):
                exited.add(name)
                console.print(
                    f"[bold red]{name} exited[/] (its last lines are above); the rest keeps running"
                )
            return bool(alive)

        try:
            follower.follow(keep_going)
        except KeyboardInterrupt:
            pass
        finally:
            signal.signal(signal.SIGINT, signal.SIG_IGN)  # a second Ctrl-C must not cut the shutdown short
            with console.status("stopping"):
                killed = platform.stop()
            follower.poll()  # the services' own shutdown lines
            console.print("stopped" + (f" (had to kill: {', '.join(killed)})" if killed else ""))

    @dev.command("down")
    def down(local_dir: LocalDir = None) -> None:
        """Stop everything `ops dev up` started (services drain first; data is kept)."""
        from commerce_platform.local.runtime import LocalConfig, LocalPlatform

        platform = LocalPlatform(LocalConfig(local_dir=local_dir))
        running = platform.running()
        if not running:
            platform.stop()  # clears a stale state file
            typer.echo("ops dev: nothing running")
            return
        killed = platform.stop()
        typer.echo(
            f"ops dev: stopped {', '.join(running)}" + (f" (killed: {', '.join(killed)})" if killed else "")
        )

    @dev.command("status")
    def status(local_dir: LocalDir = None) -> None:
        """What is running, on which URL and pid, and whether it is ready. Exit 1 when nothing runs."""
        from commerce_platform.local.runtime import LocalConfig, LocalPlatform

        platform = LocalPlatform(LocalConfig(local_dir=local_dir))
        if not platform.running():
            typer.echo("ops dev: nothing running")
            raise typer.Exit(1)
        console = Console()
        console.print(_status_table(platform))
        supervisor = platform.state.supervisor_pid
        if supervisor and psutil.pid_exists(supervisor):
            console.print(
                f"started by `ops dev up` (pid {supervisor}), which is following the logs; Ctrl-C there "
                "or `ops dev down` stops everything"
            )
        else:
            console.print(
                "running detached: `ops dev logs` follows the logs, `ops dev down` stops everything"
            )

    @dev.command("logs")
    def logs(
        local_dir: LocalDir = None,
        from_start: Annotated[bool, typer.Option(help="Print the logs from the beginning.")] = False,
    ) -> None:
        """Follow the logs of a running (e.g. detached) local platform."""
        from commerce_platform.local.logs import LogFollower
        from commerce_platform.local.runtime import GATEWAY, LocalConfig, LocalPlatform

        platform = LocalPlatform(LocalConfig(local_dir=local_dir))
        names = list(platform.state.processes) or [s.name for s in catalogue.SERVICES] + [GATEWAY]
        follower = LogFollower(
            {name: platform.layout.log_file(name) for name in names}, Console(), from_start=from_start
        )
        try:
            follower.follow(lambda: platform.layout.state_file.exists())
        except KeyboardInterrupt:
            pass
