"""Child processes we start and may have to stop from another `ops` invocation.

A process is identified by pid *and* creation time, so a pid the OS has since reused is never signalled.

Every process also carries its local folder: services and the gateway in their environment (`OPS_DEV_ROOT`,
`OPS_DEV_NAME`), the embedded Postgres and Redis on their command line (data folder, socket path). So what a local
folder started is found again even when its state file (or the whole folder) is gone: `find_own`.
"""

from __future__ import annotations

import ctypes
import signal
import subprocess
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import psutil

ROOT_ENV = "OPS_DEV_ROOT"  # the local folder a service or the gateway was started from
NAME_ENV = "OPS_DEV_NAME"  # its name (users, gateway, ...)


@dataclass
class ProcessRecord:
    name: str
    pid: int
    create_time: float
    port: int | None = None
    url: str | None = None
    log_file: str | None = None

    def to_json(self) -> dict:
        return asdict(self)

    def process(self) -> psutil.Process | None:
        """The live process this record names, or None if it is gone (or only a zombie, or the pid was reused)."""
        try:
            proc = psutil.Process(self.pid)
            if abs(proc.create_time() - self.create_time) > 0.01:
                return None
            if proc.status() == psutil.STATUS_ZOMBIE:
                return None
            return proc
        except (psutil.NoSuchProcess, psutil.AccessDenied):
            return None

    @property
    def alive(self) -> bool:
        return self.process() is not None


PR_SET_PDEATHSIG = 1  # linux/prctl.h


def die_with_parent() -> None:
    """A `preexec_fn`: the child gets SIGTERM when the process that started it dies (Linux), so a killed test or
    benchmark run leaves no server behind."""
    ctypes.CDLL(None, use_errno=True).prctl(PR_SET_PDEATHSIG, signal.SIGTERM)


def spawn(
    name: str,
    argv: list[str],
    env: dict[str, str],
    log_file: Path,
    cwd: Path | None = None,
    port: int | None = None,
    url: str | None = None,
) -> tuple[subprocess.Popen, ProcessRecord]:
    """Starts `argv` in its own session (a terminal's Ctrl-C reaches only `ops`), output appended to `log_file`."""
    log_file.parent.mkdir(parents=True, exist_ok=True)
    with open(log_file, "ab") as log:
        popen = subprocess.Popen(
            argv,
            env=env,
            cwd=cwd,
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    record = ProcessRecord(
        name=name,
        pid=popen.pid,
        create_time=psutil.Process(popen.pid).create_time(),
        port=port,
        url=url,
        log_file=str(log_file),
    )
    return popen, record


def terminate(records: list[ProcessRecord], timeout: float = 10.0) -> list[str]:
    """SIGTERM the processes (and their descendants), wait up to `timeout` for them to drain, then SIGKILL.

    Returns the names of those that had to be killed.
    """
    victims: dict[psutil.Process, str] = {}
    for record in records:
        proc = record.process()
        if proc is None:
            continue
        try:
            for child in proc.children(recursive=True):
                victims[child] = record.name
        except psutil.NoSuchProcess:
            pass
        victims[proc] = record.name
    for proc in victims:
        _signal(proc, signal.SIGTERM)
    still_alive = _wait_gone(list(victims), timeout)
    for proc in still_alive:
        _signal(proc, signal.SIGKILL)
    _wait_gone(still_alive, 5)
    return sorted({victims[p] for p in still_alive})


def _wait_gone(procs: list[psutil.Process], timeout: float) -> list[psutil.Process]:
    """Waits until none is running; returns those still running at the timeout. A zombie counts as gone: a
    detached stack's processes are reaped by init, on its own schedule, not by us."""
    deadline = time.monotonic() + timeout
    alive = [p for p in procs if _is_running(p)]
    while alive and time.monotonic() < deadline:
        time.sleep(0.05)
        alive = [p for p in alive if _is_running(p)]
    return alive


def _signal(proc: psutil.Process, sig: int) -> None:
    try:
        proc.send_signal(sig)
    except (psutil.NoSuchProcess, ProcessLookupError):
        pass


def _is_running(proc: psutil.Process) -> bool:
    try:
        return proc.is_running() and proc.status() != psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return False


@dataclass(frozen=True)
class OwnProcess:
    """A process started from a local folder, found by its marks rather than by a state file."""

    name: str
    process: psutil.Process

    @property
    def pid(self) -> int:
        return self.process.pid


def marks(root: Path, name: str) -> dict[str, str]:
    """The environment variables that tie a process to its local folder (see `find_own`)."""
    return {ROOT_ENV: str(root), NAME_ENV: name}


def find_own(root: Path, by_command_line: dict[str, tuple[str, ...]] | None = None) -> list[OwnProcess]:
    """Every live process started from the local folder `root`: uvicorn processes (services, gateway) by their
    environment's marks, others by their command line: `by_command_line` maps a name to the program and
    arguments it runs with, e.g. {"postgres": ("postgres", "-D", "<root>/postgres")} (Postgres's workers have
    other command lines, and go when their postmaster goes; Redis rewrites its title, environment included, so
    only its title `redis-server unixsocket:<path>` tells)."""
    signatures = by_command_line or {}
    root_text = str(root)
    found = []
    for proc in psutil.process_iter(["cmdline", "status"]):
        try:
            if proc.info["status"] == psutil.STATUS_ZOMBIE:
                continue
            cmdline = proc.info["cmdline"] or []
            if not cmdline:
                continue
            name = next(
                (
                    name
                    for name, (program, *args) in signatures.items()
                    if Path(cmdline[0]).name == program and _contains(cmdline[1:], args)
                ),
                None,
            )
            if name is not None:
                found.append(OwnProcess(name, proc))
            elif "uvicorn" in cmdline:
                environ = proc.environ()
                if environ.get(ROOT_ENV) == root_text:
                    found.append(OwnProcess(environ.get(NAME_ENV, "?"), proc))
        except (psutil.NoSuchProcess, psutil.AccessDenied, psutil.ZombieProcess):
            continue
    return found


def _contains(argv: list[str], wanted: list[str]) -> bool:
    return any(argv[i : i + len(wanted)] == wanted for i in range(len(argv) - len(wanted) + 1))


def stop_own(
    found: list[OwnProcess], timeout: float = 10.0, kill_at_once: frozenset[str] = frozenset()
) -> list[str]:
    """Stops processes found by `find_own`: services and gateway first (SIGTERM, drain), then Redis (SIGTERM,
    it saves its snapshot), then Postgres (SIGINT: its fast shutdown); SIGKILL whatever outlives `timeout`, and
    at once those named in `kill_at_once` (e.g. a Redis whose data folder is gone: it would refuse to exit
    without saving). Returns the names that had to be killed."""
    killed: list[str] = []
    waves = (
        ([p for p in found if p.name not in ("redis", "postgres")], signal.SIGTERM),
        ([p for p in found if p.name == "redis"], signal.SIGTERM),
        ([p for p in found if p.name == "postgres"], signal.SIGINT),
    )
    for wave, sig in waves:
        for own in wave:
            _signal(own.process, signal.SIGKILL if own.name in kill_at_once else sig)
        still_alive = _wait_gone([own.process for own in wave], timeout)
        for proc in still_alive:
            try:
                for child in proc.children(recursive=True):
                    _signal(child, signal.SIGKILL)
            except psutil.NoSuchProcess:
                pass
            _signal(proc, signal.SIGKILL)
        _wait_gone(still_alive, 5)
        killed += sorted(own.name for own in wave if own.process in still_alive or own.name in kill_at_once)
    return killed
