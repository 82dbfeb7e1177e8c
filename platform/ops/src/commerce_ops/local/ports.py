"""Is a TCP port free, and if not, who holds it (so the message names the process, not a traceback)."""

from __future__ import annotations

import errno
import random
import socket
from pathlib import Path

import psutil

from commerce_ops.local.processes import NAME_ENV, ROOT_ENV
from commerce_platform import catalogue


class PortInUseError(RuntimeError):
    pass


# free_port picks below the kernel's ephemeral range (ip_local_port_range): a port the kernel hands out itself, for
# another process's bind to port 0 or as the local port of any outgoing connection, may be taken again by the time
# the service that was given it binds it. Below the range, only another explicit pick can meet it.
PICK_FLOOR = 20000
EPHEMERAL_RANGE = Path("/proc/sys/net/ipv4/ip_local_port_range")


def _pick_range() -> range:
    try:
        ephemeral_low = int(EPHEMERAL_RANGE.read_text().split()[0])
    except (OSError, ValueError, IndexError):
        ephemeral_low = 32768  # Linux's default; elsewhere the kernel's own pick is the fallback
    return range(PICK_FLOOR, ephemeral_low)


def free_port(host: str = "127.0.0.1") -> int:
    """A TCP port nothing listens on right now: a random one below the kernel's ephemeral range that binds (so no
    outgoing connection takes it meanwhile), else the kernel's pick."""
    candidates = _pick_range()
    for _ in range(50 if len(candidates) > 1000 else 0):
        port = random.choice(candidates)
        if port_is_free(port, host):
            return port
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        return sock.getsockname()[1]


def free_port_offset(
    first: int = 1000, step: int = 100, attempts: int = 50, lane: tuple[int, int] = (0, 1)
) -> int:
    """An offset (`--port-offset`, OPS_PORT_OFFSET) at which the gateway's and every service's catalogue port are
    free: where another stack can run beside one a developer may have on the catalogue ports. `lane` (i, n): only
    every n-th candidate from the i-th, so n concurrent callers (pytest-xdist workers) never pick the same one."""
    bases = [catalogue.GATEWAY_PORT, *(s.port for s in catalogue.SERVICES)]
    index, count = lane
    candidates = range(first + step * index, first + step * attempts, step * count)
    for offset in candidates:
        if all(port_is_free(base + offset) for base in bases):
            return offset
    raise PortInUseError(f"no free port offset between {first} and {first + step * (attempts - 1)}")


def port_is_free(port: int, host: str = "127.0.0.1") -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((host, port))
        except OSError as exc:
            if exc.errno == errno.EADDRINUSE:
                return False
            raise
    return True


def port_owner(port: int) -> str:
    """`pid 123 (python: uvicorn users_service.main:app ...)`, or a best-effort description."""
    try:
        connections = psutil.net_connections(kind="tcp")
    except psutil.AccessDenied:
        return "another process (run as its owner to see which)"
    for conn in connections:
        if conn.status == psutil.CONN_LISTEN and conn.laddr and conn.laddr.port == port and conn.pid:
            try:
                proc = psutil.Process(conn.pid)
                ours = _started_by_ops_dev(proc)
                if ours:
                    name, root = ours
                    return (
                        f"pid {conn.pid} ({name}, started by `ops dev up` from {root}; "
                        f"`OPS_LOCAL_DIR={root} ops dev down` stops it)"
                    )
                command = " ".join(proc.cmdline())[:120] or proc.name()
                return f"pid {conn.pid} ({proc.name()}: {command})"
            except psutil.NoSuchProcess:
                return f"pid {conn.pid} (exited meanwhile)"
    return "another process"


def _started_by_ops_dev(proc: psutil.Process) -> tuple[str, str] | None:
    """(name, local folder) when `proc` is a service or gateway some `ops dev up` started."""
    try:
        environ = proc.environ()
    except (psutil.AccessDenied, psutil.ZombieProcess):
        return None
    if ROOT_ENV not in environ:
        return None
    return environ.get(NAME_ENV, "a process"), environ[ROOT_ENV]


def check_ports_free(ports: dict[str, int]) -> None:
    """Raises PortInUseError naming every taken port and its owner."""
    problems = [
        f"port {port} (for {name}) is already in use by {port_owner(port)}"
        for name, port in ports.items()
        if not port_is_free(port)
    ]
    if problems:
        raise PortInUseError("; ".join(problems))


def listening_ports(ports: list[int]) -> list[int]:
    return [port for port in ports if not port_is_free(port)]
