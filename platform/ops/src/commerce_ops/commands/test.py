"""`ops test`: every test in the repo: the service suites on xdist workers, the Pulumi suites in two processes beside
them, the engine tier last.

Pulumi's mock monitor owns its event loop, and the service suites run their own asyncio loops, so the Pulumi-based
suites (platform, policy, preview, promote) get a process of their own; so does the engine tier (tests/engine: the
real Pulumi engine against a local control plane, whose session fixtures build the toolchain and start the cluster).
Extra arguments run one plain pytest instead.

The Pulumi suites run alongside the others, in two processes (PULUMI_PROCESSES; their output goes to files, each
printed as one block when they end, so nothing interleaves); the others run on `OPS_TEST_WORKERS` pytest-xdist
workers (default 4; 1 = no xdist), one test file per worker at a time (`--dist loadfile`), the longest files first
(tests/conftest.py), each worker with its own databases and Redis db.
The engine tier runs last, on its own. `OPS_TEST_SKIP_ENGINE=1` leaves it out (to time or run the rest on a
machine without the engine toolchain); CI never sets it.

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

# Two Pulumi processes side by side: the renders under the mock monitor and the policy on them (which share their
# session's renders), and the previews and promotions (git clones and `ops` subprocesses, mostly waiting).
PULUMI_PROCESSES = (("tests/platform", "tests/policy"), ("tests/preview", "tests/promote"))
PULUMI_SUITES = tuple(folder for part in PULUMI_PROCESSES for folder in part)
ENGINE_SUITES = ("tests/engine",)
# The service suites wait on their servers and subprocesses much of the time, but each worker starts its own session
# instances of the services: on 2 cores, with the Pulumi processes beside them, the run (engine tier excluded) took
# 174 s on 3 workers, 155-160 s on 4 and 145-178 s on 5 (2026-12-07, heaviest files first).
DEFAULT_WORKERS = 4


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


def _pulumi_processes(present: list[str]) -> list[list[str]]:
    """The Pulumi folders present, grouped into their processes (PULUMI_PROCESSES); none empty."""
    parts = [[f for f in part if f in present] for part in PULUMI_PROCESSES]
    return [part for part in parts if part]


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


_children: list[subprocess.Popen] = []  # the pytest processes running now, to pass a SIGTERM/SIGHUP on to


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


def _start(argv: list[str], cwd: Path, env: dict[str, str], output: Path | None = None) -> subprocess.Popen:
    """One pytest process, its output to the terminal or to `output`."""
    if output is None:
        child = subprocess.Popen(argv, cwd=cwd, env=env)
    else:
        with output.open("wb") as out:
            child = subprocess.Popen(argv, cwd=cwd, env=env, stdout=out, stderr=subprocess.STDOUT)
    _children.append(child)
    return child


def _finish(child: subprocess.Popen) -> int:
    """Waits for a pytest process; interrupted, every running one gets up to 30 s to stop its service processes
    and finish."""
    try:
        return child.wait()
    except KeyboardInterrupt:
        for other in list(_children):
            try:
                other.wait(30)
            except subprocess.TimeoutExpired:
                other.kill()
                other.wait()
        raise
    finally:
        if child in _children:
            _children.remove(child)


def _pytest(argv: list[str], cwd: Path, env: dict[str, str]) -> int:
    return _finish(_start(argv, cwd, env))


def _workers() -> list[str]:
    """pytest-xdist arguments for the service suites (none with OPS_TEST_WORKERS=1)."""
    raw = os.environ.get("OPS_TEST_WORKERS") or str(DEFAULT_WORKERS)
    if not raw.isdigit() or int(raw) < 1:
        typer.secho(
            f"ops test: OPS_TEST_WORKERS={raw!r}: give a whole number of 1 or more", err=True, fg="red"
        )
        raise typer.Exit(2)
    # --no-loadscope-reorder: files in collection order, which puts the longest first (tests/conftest.py).
    return [] if int(raw) == 1 else ["-n", raw, "--dist", "loadfile", "--no-loadscope-reorder"]


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

        With no arguments: every folder under tests/ (the Pulumi mock suites and the engine tier in processes of
        their own; the Pulumi suites run alongside the rest, the rest on xdist workers, the longest files first).
        With arguments, one pytest run gets them all, e.g. `ops test tests/e2e -k logs -x`.

        The run starts its own Postgres and Redis (embedded, on unix sockets, in a temp folder) unless
        TEST_DATABASE_URL / TEST_REDIS_URL name servers to use.
        """
        root = repo_root()
        pytest = [sys.executable, "-m", "pytest"]
        if ctx.args:
            raise typer.Exit(_with_servers(lambda env: _pytest([*pytest, *ctx.args], root, env)))
        workers = _workers()  # a bad value fails before anything starts

        def run_all(env: dict[str, str]) -> int:
            groups = suites(root)
            if os.environ.get("OPS_TEST_SKIP_ENGINE") == "1" and groups["engine"]:
                typer.secho("== ops test: engine suites skipped (OPS_TEST_SKIP_ENGINE=1)", bold=True)
                groups["engine"] = []
            codes = []
            counts = [0, 0, 0]

            def done(code: int, junit: Path) -> None:
                codes.append(code)
                for i, n in enumerate(_counts(junit)):
                    counts[i] += n

            def header(name: str, present: list[str], how: str = "") -> None:
                typer.secho(f"== ops test: {name} suites ({', '.join(present)}){how}", bold=True)

            with tempfile.TemporaryDirectory() as tmp:
                junit = {name: Path(tmp) / f"{name}.xml" for name in groups}
                # The Pulumi suites alongside the rest, in two processes (the mock renders and policy; the git
                # previews and promotions), their output kept in files until they end.
                background = []
                for part, folders in enumerate(_pulumi_processes(groups["pulumi"])):
                    header("pulumi", folders, ": running alongside, output when they end")
                    report, log = Path(tmp) / f"pulumi-{part}.xml", Path(tmp) / f"pulumi-{part}.log"
                    child = _start([*pytest, *folders, f"--junitxml={report}"], root, env, log)
                    background.append((folders, child, report, log))
                if groups["services"]:
                    header("services", groups["services"])
                    argv = [*pytest, *workers, *groups["services"], f"--junitxml={junit['services']}"]
                    done(_pytest(argv, root, env), junit["services"])
                for folders, child, report, log in background:
                    code = _finish(child)
                    header("pulumi", folders, ": output")
                    sys.stdout.flush()
                    sys.stdout.buffer.write(log.read_bytes())
                    sys.stdout.flush()
                    done(code, report)
                if groups["engine"]:  # on its own: it builds a toolchain and runs a control plane
                    header("engine", groups["engine"])
                    done(
                        _pytest([*pytest, *groups["engine"], f"--junitxml={junit['engine']}"], root, env),
                        junit["engine"],
                    )
            passed, failed, skipped = counts
            # One closing line for the whole run, whatever the number of pytest processes.
            typer.echo(f"total: {passed} passed, {failed} failed, {skipped} skipped")
            # pytest's 5 means "no tests collected": a suite that runs nothing is a failure here.
            return 0 if all(c == 0 for c in codes) and passed > 0 else 1

        raise typer.Exit(_with_servers(run_all))
