"""Embedded PostgreSQL from the `pgserver` wheel's binaries, with data under the local folder.

We drive `initdb`/`pg_ctl` ourselves (rather than pgserver's handle objects) so the server outlives `ops dev up
--detach`, can be stopped from another process, and can be crashed/restarted by the chaos tools. It listens on a
unix socket only, so it never competes for a TCP port. Passwords are enforced (scram), like a real server.
"""

from __future__ import annotations

import hashlib
import os
import signal
import subprocess
import tempfile
import time
import warnings
from pathlib import Path

import psutil

with warnings.catch_warnings():
    # Importing pgserver touches platformdirs' runtime dir, which warns when XDG_RUNTIME_DIR is unset.
    warnings.simplefilter("ignore")
    from pgserver._commands import POSTGRES_BIN_PATH

SUPERUSER = "postgres"
# Postgres refuses to run as root; when we are root it runs as this system user (as pgserver itself does).
SYSTEM_USER = "pgserver"
_MAX_SOCKET_PATH = 100


class EmbeddedPostgresError(RuntimeError):
    pass


class EmbeddedPostgres:
    def __init__(self, data_dir: Path, superuser_password: str) -> None:
        self.data_dir = data_dir
        self.superuser_password = superuser_password
        self.log_file = data_dir.parent / "postgres.log"
        self._run_as = SYSTEM_USER if os.geteuid() == 0 else None

    # -- where to connect ---------------------------------------------------------------------------------------
    @property
    def socket_dir(self) -> Path:
        """The data folder when its socket path fits the unix limit, else a short folder under the temp dir."""
        if len(str(self.data_dir / ".s.PGSQL.5432")) <= _MAX_SOCKET_PATH:
            return self.data_dir
        digest = hashlib.sha256(str(self.data_dir).encode()).hexdigest()[:12]
        return Path(tempfile.gettempdir()) / f"commerce-pg-{digest}"

    def url(self, user: str, password: str, database: str) -> str:
        return f"postgresql://{user}:{password}@/{database}?host={self.socket_dir}"

    def admin_url(self) -> str:
        return self.url(SUPERUSER, self.superuser_password, "postgres")

    @property
    def command_line(self) -> tuple[str, ...]:
        """How its postmaster shows in `ps`: `postgres -D <data dir> ...` (the workers show other titles)."""
        return ("postgres", "-D", str(self.data_dir))

    # -- lifecycle ----------------------------------------------------------------------------------------------
    @property
    def pid(self) -> int | None:
        """The postmaster's pid while it runs (from postmaster.pid), else None."""
        pid_file = self.data_dir / "postmaster.pid"
        try:
            pid = int(pid_file.read_text().splitlines()[0])
        except (FileNotFoundError, IndexError, ValueError):
            return None
        try:
            # A stale postmaster.pid (after a crash or reboot) may name a pid now used by something else.
            proc = psutil.Process(pid)
            if proc.name() != "postgres" or proc.status() == psutil.STATUS_ZOMBIE:
                return None
        except psutil.NoSuchProcess:
            return None
        return pid

    def start(self, timeout: float = 30) -> None:
        self._prepare_filesystem()
        if not (self.data_dir / "PG_VERSION").exists():
            self._initdb()
        if self.pid is not None:
            return
        socket_dir = self.socket_dir
        socket_dir.mkdir(parents=True, exist_ok=True)
        self._chown(socket_dir)
        # 200 connections: a laptop stack needs far fewer, but `ops bench` runs extra copies of the services
        # (each with its pool) next to pgbench's 32 clients, and the default 100 ran out.
        options = f"-c listen_addresses='' -c max_connections=200 -k {socket_dir}"
        self._pg(
            [
                "pg_ctl",
                "-D",
                str(self.data_dir),
                "-l",
                str(self.log_file),
                "-o",
                options,
                "-w",
                "-t",
                str(int(timeout)),
                "start",
            ],
            timeout=timeout + 5,
        )

    def stop(self, timeout: float = 20, mode: str = "fast") -> None:
        """`fast` rolls back open transactions and shuts down cleanly; `immediate` is a crash (recovery on start)."""
        if self.pid is None:
            return
        try:
            self._pg(
                ["pg_ctl", "-D", str(self.data_dir), "-m", mode, "-w", "-t", str(int(timeout)), "stop"],
                timeout=timeout + 5,
            )
        except EmbeddedPostgresError:
            pid = self.pid
            if pid is not None:
                os.kill(pid, signal.SIGKILL)
                _wait_gone(pid, 5)

    # -- helpers ------------------------------------------------------------------------------------------------
    def _initdb(self) -> None:
        self.data_dir.mkdir(parents=True, exist_ok=True)
        self._chown(self.data_dir)
        self.data_dir.chmod(0o700)
        # The superuser password reaches initdb through a 0600 file that is removed right after.
        pwfile = self.data_dir.parent / ".pgpass-init"
        fd = os.open(pwfile, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as out:
            out.write(self.superuser_password + "\n")
        self._chown(pwfile)
        try:
            self._pg(
                [
                    "initdb",
                    "-D",
                    str(self.data_dir),
                    "-U",
                    SUPERUSER,
                    "--encoding=UTF8",
                    "--auth-local=scram-sha-256",
                    "--auth-host=scram-sha-256",
                    f"--pwfile={pwfile}",
                ],
                timeout=120,
            )
        finally:
            pwfile.unlink(missing_ok=True)

    def _prepare_filesystem(self) -> None:
        self.data_dir.parent.mkdir(parents=True, exist_ok=True)
        if self._run_as is None:
            return
        from pgserver.utils import ensure_folder_permissions, ensure_prefix_permissions, ensure_user_exists

        ensure_user_exists(self._run_as)
        # The postgres user must be able to reach its data folder and run the bundled binaries.
        ensure_prefix_permissions(self.data_dir.parent)
        self.data_dir.parent.chmod(self.data_dir.parent.stat().st_mode | 0o055)
        ensure_prefix_permissions(POSTGRES_BIN_PATH)
        ensure_folder_permissions(POSTGRES_BIN_PATH.parent, 0o055)
        self.log_file.touch(exist_ok=True)
        self._chown(self.log_file)

    def _chown(self, path: Path) -> None:
        if self._run_as is None:
            return
        import pwd

        entry = pwd.getpwnam(self._run_as)
        os.chown(path, entry.pw_uid, entry.pw_gid)

    def _pg(self, argv: list[str], timeout: float) -> None:
        command = [str(POSTGRES_BIN_PATH / argv[0]), *argv[1:]]
        # Output goes to a file, not a pipe: pg_ctl's backgrounded postmaster would keep a pipe open forever.
        with tempfile.TemporaryFile("w+") as output:
            try:
                subprocess.run(
                    command,
                    stdout=output,
                    stderr=subprocess.STDOUT,
                    stdin=subprocess.DEVNULL,
                    user=self._run_as,
                    timeout=timeout,
                    check=True,
                    cwd=self.data_dir.parent,
                    start_new_session=True,
                )
            except (subprocess.CalledProcessError, subprocess.TimeoutExpired) as exc:
                output.seek(0)
                tail = (output.read() + _tail(self.log_file)).strip()[-2000:]
                raise EmbeddedPostgresError(f"{argv[0]} failed ({exc}):\n{tail}") from None


def _tail(path: Path, lines: int = 20) -> str:
    try:
        return "\n" + "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except FileNotFoundError:
        return ""


def _wait_gone(pid: int, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return
        time.sleep(0.05)
