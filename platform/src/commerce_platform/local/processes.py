"""Child processes we start and may have to stop from another `ops` invocation.

A process is identified by pid *and* creation time, so a pid the OS has since reused is never signalled.
"""

from __future__ import annotations

import ctypes
import signal
import subprocess
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import psutil


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
