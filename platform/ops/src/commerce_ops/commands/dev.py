"""`ops dev up/down/status/restart/logs/psql`: the whole platform on this machine (see commerce_ops.local)."""

from __future__ import annotations

import signal
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from commerce_ops.local.layout import LOCAL_DIR_ENV

if TYPE_CHECKING:
    from rich.console import Console
    from rich.table import Table

    from commerce_ops.local.runtime import LocalPlatform

# The runtime (asyncpg, redis, httpx, pgserver) and the catalogue (the services' settings classes) are imported
# inside the commands, so other `ops` commands and `ops --help` don't pay for them at start-up.

LocalDir = Annotated[
    Path | None,
    typer.Option(
        "--local-dir", envvar=LOCAL_DIR_ENV, help="State folder (data, keys, logs). Default: <repo>/.local."
    ),
]
DatabaseUrl = Annotated[
    str | None,
    typer.Option(
        envvar="DATABASE_URL",
        show_default=False,
        help="Admin URL of an existing Postgres (default: embedded).",
    ),
]
RedisUrl = Annotated[
    str | None,
    typer.Option(
        envvar="REDIS_URL", show_default=False, help="URL of an existing Redis (default: embedded)."
    ),
]
NOTHING_RUNNING = "ops dev: nothing running (start it with `ops dev up`)"


def _fail(message: str, code: int = 1) -> None:
    _console(stderr=True).print(f"[bold red]ops dev:[/] {message}", highlight=False, soft_wrap=True)
    raise typer.Exit(code)


def _check_names(names: list[str], allowed: list[str]) -> None:
    for name in names:
        if name not in allowed:
            _fail(f"unknown name {name!r}; one of: {', '.join(allowed)}", 2)


def _status_table(platform: LocalPlatform, rows: list[dict] | None = None) -> Table:
    from rich.table import Table

    table = Table(title="local platform", title_justify="left")
    for column in ("service", "url", "pid", "ready"):
        table.add_column(column)
    for row in platform.status() if rows is None else rows:
        ready = (
            "[green]ready[/]" if row["ready"] else ("[yellow]starting[/]" if row["alive"] else "[red]down[/]")
        )
        table.add_row(row["name"], row["url"] or "", str(row["pid"] or "-"), ready)
    return table


def _print_welcome(console: Console, platform: LocalPlatform) -> None:
    from commerce_platform import catalogue

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
        help="Run the whole platform on this machine.",
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
        database_url: DatabaseUrl = None,
        redis_url: RedisUrl = None,
        db_prefix: Annotated[
            str,
            typer.Option(envvar="OPS_DB_PREFIX", help="Prefix for each service's database and login name."),
        ] = "",
        production_like: Annotated[
            bool, typer.Option(help="uvloop + httptools, access log off (as for benchmarks).")
        ] = False,
        seed: Annotated[bool, typer.Option(help="Create demo products when the inventory is empty.")] = True,
        settings: Annotated[
            list[str] | None,
            typer.Option(
                "--set",
                envvar="OPS_DEV_SET",
                metavar="SERVICE.SETTING=VALUE",
                show_default=False,
                help="Override one of a service's (non-secret) settings on this laptop, e.g. `--set "
                "users.PASSWORD_HASH_TIME_COST=1` (repeatable; OPS_DEV_SET takes several, space-separated). "
                "`ops dev restart` keeps them.",
            ),
        ] = None,
    ) -> None:
        """Start the platform and follow its logs.

        Starts Postgres, Redis, the four services and the gateway, then follows their logs (Ctrl-C stops
        everything); with --detach, returns once all are ready.
        """
        from commerce_ops.local.environment import OverrideError, parse_overrides
        from commerce_ops.local.logs import LogFollower
        from commerce_ops.local.runtime import LocalConfig, LocalPlatform, LocalPlatformError

        try:
            env_overrides = parse_overrides(settings or [])
        except OverrideError as exc:
            _fail(str(exc), 2)
        console = _console(log_path=False)
        platform = LocalPlatform(
            LocalConfig(
                local_dir=local_dir,
                port_offset=port_offset,
                database_url=database_url or None,
                redis_url=redis_url or None,
                db_prefix=db_prefix,
                production_like=production_like,
                seed=seed,
                env_overrides=env_overrides,
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

                for service, values in env_overrides.items():
                    given = ", ".join(f"{name}={value}" for name, value in values.items())
                    console.log(f"{service}: {given} (--set, instead of the dev environment's)")
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
            if not platform.layout.state_file.exists():
                # `ops dev down` from another terminal, or the state folder was deleted under us: either way
                # stop (the `finally` below also finds what this run started by its marks, Postgres included).
                if platform.running() or platform.leftovers():  # still up: not a `down` from elsewhere
                    console.print(
                        f"[bold red]{platform.layout.state_file} disappeared[/]; stopping everything"
                    )
                return False
            platform.reload_state()  # `ops dev restart` from another terminal records the new process there
            alive = platform.running()
            for name in sorted(platform.state.processes.keys() - set(alive) - exited):
                exited.add(name)
                console.print(
                    f"[bold red]{name} exited[/] (its last lines are above); the rest keeps running "
                    f"(`ops dev restart {name}` starts it again)"
                )
            for name in sorted(exited & set(alive)):
                exited.discard(name)
                console.print(
                    f"[bold green]{name} is running again[/] (pid {platform.state.processes[name].pid})"
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
        """Stop everything `ops dev up` started.

        Services drain first; data is kept. Also stops what an earlier run left running after its state folder
        was deleted.
        """
        from commerce_ops.local.runtime import (
            LocalConfig,
            LocalPlatform,
            describe_leftovers,
            process_names,
        )

        platform = LocalPlatform(LocalConfig(local_dir=local_dir))
        running = platform.running()
        leftovers = platform.leftovers()
        if not running and not leftovers:
            platform.stop()  # clears a stale state file
            typer.echo("ops dev: nothing running")
            return
        if leftovers:
            typer.echo(f"ops dev: {describe_leftovers(leftovers)}; stopping them")
        killed = platform.stop()
        order = process_names()
        stopped = sorted({*running, *(own.name for own in leftovers)}, key=order.index)
        typer.echo(
            f"ops dev: stopped {', '.join(stopped)}" + (f" (killed: {', '.join(killed)})" if killed else "")
        )

    @dev.command("status")
    def status(local_dir: LocalDir = None) -> None:
        """What runs where, and is it ready.

        One row per process: URL, pid, ready. Exit 1 when anything is down or not ready (named on the last
        line), or nothing runs.
        """
        from commerce_ops.local.runtime import LocalConfig, LocalPlatform, describe_leftovers

        platform = LocalPlatform(LocalConfig(local_dir=local_dir))
        if not platform.running():
            if leftovers := platform.leftovers():
                _fail(f"{describe_leftovers(leftovers)}, but unrecorded; stop them with `ops dev down`")
            typer.echo(NOTHING_RUNNING)
            raise typer.Exit(1)
        console = _console()
        rows = platform.status()
        console.print(_status_table(platform, rows))
        supervisor = platform.state.supervisor_pid
        if supervisor and _pid_exists(supervisor):
            console.print(
                f"started by `ops dev up` (pid {supervisor}), which is following the logs; Ctrl-C there "
                "or `ops dev down` stops everything"
            )
        else:
            console.print(
                "running detached: `ops dev logs` follows the logs, `ops dev down` stops everything"
            )
        down = [row["name"] for row in rows if not row["alive"]]
        starting = [row["name"] for row in rows if row["alive"] and not row["ready"]]
        problems = ([f"down: {', '.join(down)}"] if down else []) + (
            [f"not ready: {', '.join(starting)}"] if starting else []
        )
        if problems:
            first = (down or starting)[0]
            _fail(
                "; ".join(problems)
                + f" (`ops dev logs {first} --no-follow` shows why, `ops dev restart {first}` starts it again)"
            )

    @dev.command("restart")
    def restart(
        names: Annotated[
            list[str] | None,
            typer.Argument(
                metavar="NAME",
                help="users, inventory, orders, payments, gateway, redis or postgres (default: the services "
                "and the gateway).",
                show_default=False,
            ),
        ] = None,
        local_dir: LocalDir = None,
        database_url: DatabaseUrl = None,
        redis_url: RedisUrl = None,
    ) -> None:
        """Restart a service (e.g. one that crashed).

        Restarts the named processes (default: the four services and the gateway) and returns once they are
        ready. Data and the other processes are left alone.
        """
        from commerce_ops.local.runtime import (
            GATEWAY,
            LocalPlatform,
            LocalPlatformError,
            process_names,
        )
        from commerce_platform import catalogue

        chosen = names or [*(s.name for s in catalogue.SERVICES), GATEWAY]
        _check_names(chosen, process_names())
        try:
            platform = LocalPlatform.attach(local_dir, database_url or None, redis_url or None)
            if not platform.running():
                typer.echo(NOTHING_RUNNING)
                raise typer.Exit(1)
            with _console(stderr=True).status("restarting") as spinner:
                for name in chosen:
                    spinner.update(f"restarting {name}")
                    platform.restart(name)
                    typer.echo(f"ops dev: {name} restarted" + _pid_note(platform, name))
        except LocalPlatformError as exc:
            _fail(str(exc))

    @dev.command("logs")
    def logs(
        names: Annotated[
            list[str] | None,
            typer.Argument(
                metavar="SERVICE",
                help="Only these: users, inventory, orders, payments, gateway (default: all).",
                show_default=False,
            ),
        ] = None,
        local_dir: LocalDir = None,
        tail: Annotated[
            int | None,
            typer.Option(
                "--tail",
                "-n",
                min=0,
                metavar="N",
                help="Start with the last N lines of each.",
                show_default=False,
            ),
        ] = None,
        follow: Annotated[
            bool, typer.Option("--follow/--no-follow", "-f/-F", help="Keep printing new lines.")
        ] = True,
        from_start: Annotated[
            bool, typer.Option("--from-start", help="Start with everything logged since `up`.")
        ] = False,
    ) -> None:
        """Show and follow the logs, in time order.

        The services' and the gateway's logs, merged by time. Without --tail or --from-start: what is logged
        from now on; --no-follow prints and returns (the last 10 lines of each unless --tail says otherwise).
        The files: <local dir>/run/logs/<name>.log (the previous run's: <name>.log.1).
        """
        from commerce_ops.local.logs import LogFollower
        from commerce_ops.local.runtime import GATEWAY, LocalConfig, LocalPlatform
        from commerce_platform import catalogue

        known = [*(s.name for s in catalogue.SERVICES), GATEWAY]
        _check_names(names or [], known)
        platform = LocalPlatform(LocalConfig(local_dir=local_dir))
        running = bool(platform.running())
        if not running and follow:
            _fail(f"nothing running; the last run's logs are in {platform.layout.logs_dir}")
        chosen = names or [name for name in known if name in platform.state.processes] or known
        if tail is None and not from_start and not follow:
            tail = 10
        follower = LogFollower(
            {name: platform.layout.log_file(name) for name in chosen},
            _console(),
            from_start=from_start,
            tail=None if from_start else tail,
        )
        if not follow:
            printed = follower.poll()  # with nothing running: the last run's lines, e.g. why it crashed
            if not running:
                what = "these are the last run's logs, from" if printed else "no logs in"
                _fail(f"nothing running; {what} {platform.layout.logs_dir}")
            return
        try:
            follower.follow(lambda: platform.layout.state_file.exists())
        except KeyboardInterrupt:
            pass

    @dev.command("psql")
    def psql(
        service: Annotated[
            str | None,
            typer.Argument(
                help="users, inventory, orders or payments: its database, as its login (default: the "
                "superuser on `postgres`).",
                show_default=False,
            ),
        ] = None,
        local_dir: LocalDir = None,
        database_url: DatabaseUrl = None,
        command: Annotated[
            str | None,
            typer.Option("--command", "-c", help="Run one SQL command and exit.", show_default=False),
        ] = None,
    ) -> None:
        """Open psql on a service's database.

        Connects as the service's own login (default: the superuser, database postgres) with the psql bundled
        with the embedded Postgres, over its unix socket. The password goes in the environment, never on the
        command line or the screen.
        """
        import os

        from commerce_ops.local.postgres import POSTGRES_BIN_PATH
        from commerce_ops.local.runtime import LocalPlatform, LocalPlatformError
        from commerce_platform import catalogue

        if service is not None:
            _check_names([service], [s.name for s in catalogue.SERVICES if s.uses_postgres])
        try:
            platform = LocalPlatform.attach(local_dir, database_url or None)
        except LocalPlatformError as exc:
            _fail(str(exc))
        if "postgres" not in platform.running() and not platform.state.external_database:
            _fail("the embedded Postgres is not running (start the platform with `ops dev up`)")
        url = platform.database_url(service) if service else platform.admin_database_url()
        argv = [str(POSTGRES_BIN_PATH / "psql"), *(["--command", command] if command else [])]
        os.execvpe(argv[0], argv, {**os.environ, **_libpq_env(url)})


def _pid_note(platform: LocalPlatform, name: str) -> str:
    record = platform.state.processes.get(name) or (platform.state.redis if name == "redis" else None)
    if name == "postgres":
        pid = platform.postgres.pid
        return f" (pid {pid})" if pid else ""
    return f" (pid {record.pid})" if record else ""


def _libpq_env(url: str) -> dict[str, str]:
    """A postgresql:// URL as libpq's PG* variables (so the password is never an argument)."""
    from urllib.parse import parse_qs, unquote, urlsplit

    parts = urlsplit(url)
    query = parse_qs(parts.query)
    env = {
        "PGUSER": unquote(parts.username or ""),
        "PGPASSWORD": unquote(parts.password or ""),
        "PGDATABASE": parts.path.lstrip("/") or "postgres",
        "PGHOST": query.get("host", [parts.hostname or ""])[0],
    }
    if parts.port:
        env["PGPORT"] = str(parts.port)
    return {k: v for k, v in env.items() if v}


def _pid_exists(pid: int) -> bool:
    import psutil

    return psutil.pid_exists(pid)


def _console(**kwargs) -> Console:
    from rich.console import Console

    return Console(**kwargs)
