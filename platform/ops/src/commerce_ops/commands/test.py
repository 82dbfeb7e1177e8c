"""`ops test`: every test in the repo, in three pytest processes.

Pulumi's mock monitor owns its event loop, and the service suites run their own asyncio loops, so the Pulumi-based
suites (platform, policy, preview, promote) get a process of their own; so does the engine tier (tests/engine: the
real Pulumi engine against a local control plane, whose session fixtures build the toolchain and start the cluster).
Extra arguments run one plain pytest instead.

Postgres and Redis: the run starts its own embedded servers once (see `local.dataservers`) and hands them to every
pytest process as TEST_DATABASE_URL / TEST_REDIS_URL; set those yourself to use servers you already run. The
servers are stopped when the run ends, also on Ctrl-C or SIGTERM.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import tempfile
import xml.etree.ElementTree as ET
from pathlib import Path

import typer

from commerce_ops.paths import repo_root

SERVER_VARIABLES = ("TEST_DATABASE_URL", "TEST_REDIS_URL")

PULUMI_SUITES = ("tests/platform", "tests/policy", "tests/preview", "tests/promote")
ENGINE_SUITES = ("tests/engine",)


def suites(root: Path) -> dict[str, list[str]]:
    """The pytest runs: the Pulumi-based folders, the engine tier, and every other folder under tests/ (so none is
    forgotten)."""
    folders = sorted(p.relative_to(root).as_posix() for p in (root / "tests").iterdir() if p.is_dir())
    folders = [f for f in folders if not f.rsplit("/", 1)[-1].startswith((".", "_"))]
    return {
        "pulumi": [f for f in folders if f in PULUMI_SUITES],
        "engine": [f for f in folders if f in ENGINE_SUITES],
        "services": [f for f in folders if f not in PULUMI_SUITES + ENGINE_SUITES],
    }


def _counts(junit: Path) -> tuple[int, int, int]:
    """(passed, failed, skipped) from a junit XML report."""
    if not junit.exists():
        return 0, 0, 0
    root = ET.parse(junit).getroot()
    suites = [root] if root.tag == "testsuite" else list(root)
    total = sum(int(s.get("tests", 0)) for s in suites)
    failed = sum(int(s.get("failures", 0)) + int(s.get("errors", 0)) for s in suites)
    skipped = sum(int(s.get("skipped", 0)) for s in suites)
    return total - failed - skipped, failed, skipped


_children: list[subprocess.Popen] = []  # the pytest process running now, to pass a SIGTERM/SIGHUP on to


def _stop_on_signals() -> None:
    """SIGTERM/SIGHUP end the run like Ctrl-C does: passed on to pytest as SIGINT (a terminal's Ctrl-C reaches it
    already), and the servers the run started are stopped on the way out."""

    def interrupt(signum, _frame):
        for child in _children:
            if child.poll() is None:
                child.send_signal(signal.SIGINT)
        raise KeyboardInterrupt(signal.Signals(signum).name)

    for sig in (signal.SIGTERM, signal.SIGHUP):
        signal.signal(sig, interrupt)


def _pytest(argv: list[str], cwd: Path, env: dict[str, str]) -> int:
    """One pytest process; interrupted, it gets up to 30 s to stop its service processes and finish."""
    child = subprocess.Popen(argv, cwd=cwd, env=env)
    _children.append(child)
    try:
        return child.wait()
    except KeyboardInterrupt:
        try:
            child.wait(30)
        except subprocess.TimeoutExpired:
            child.kill()
            child.wait()
        raise
    finally:
        _children.remove(child)


def _with_servers(run):
    """Runs `run(env)` with TEST_DATABASE_URL / TEST_REDIS_URL set: given ones as they are, else embedded servers
    started here once for the whole run, stopped when it ends."""
    from commerce_ops.local.dataservers import DataServerError, DataServers

    _stop_on_signals()
    try:
        servers = DataServers.start(*(os.environ.get(name) or None for name in SERVER_VARIABLES))
    except DataServerError as exc:
        typer.secho(f"ops test: {exc}", err=True, fg="red")
        raise typer.Exit(1) from None
    with servers:
        if servers.embedded:
            typer.echo(f"ops test: embedded {' and '.join(servers.embedded)} in {servers.work_dir}")
        return run(
            os.environ | {"TEST_DATABASE_URL": servers.database_url, "TEST_REDIS_URL": servers.redis_url}
        )


def register(app: typer.Typer) -> None:
    @app.command(
        "test",
        context_settings={"allow_extra_args": True, "ignore_unknown_options": True},
        options_metavar="[PYTEST ARGS]...",
    )
    def test(ctx: typer.Context) -> None:
        """Run the tests (extra arguments go to pytest).

        With no arguments: every folder under tests/, in two pytest processes (the Pulumi mock suites need
        their own). With arguments, one pytest run gets them all, e.g. `ops test tests/e2e -k logs -x`.

        The run starts its own Postgres and Redis (embedded, on unix sockets, in a temp folder) unless
        TEST_DATABASE_URL / TEST_REDIS_URL name servers to use.
        """
        root = repo_root()
        pytest = [sys.executable, "-m", "pytest"]
        if ctx.args:
            raise typer.Exit(_with_servers(lambda env: _pytest([*pytest, *ctx.args], root, env)))

        def run_all(env: dict[str, str]) -> int:
            passed = failed = skipped = 0
            codes = []
            with tempfile.TemporaryDirectory() as tmp:
                for name, present in suites(root).items():
                    if not present:
                        continue  # a plain `pytest` would run every folder
                    junit = Path(tmp) / f"{name}.xml"
                    typer.secho(f"== ops test: {name} suites ({', '.join(present)})", bold=True)
                    codes.append(_pytest([*pytest, *present, f"--junitxml={junit}"], root, env))
                    p, f, s = _counts(junit)
                    passed, failed, skipped = passed + p, failed + f, skipped + s
            # One closing line for the whole run, whatever the number of pytest processes.
            typer.echo(f"total: {passed} passed, {failed} failed, {skipped} skipped")
            # pytest's 5 means "no tests collected": a suite that runs nothing is a failure here.
            return 0 if all(c == 0 for c in codes) and passed > 0 else 1

        raise typer.Exit(_with_servers(run_all))
