"""A throw-away platform for measurements and fault injection, built on the local runtime (`LocalPlatform`).

The services run configured as in another environment (prod by default: its log level and pool sizes) with
per-service overrides (e.g. LOG_LEVEL=WARNING), through `LocalConfig(environment=..., env_overrides=...)`. What the
lab adds: extra uvicorn processes beside the platform under the same server settings (the ceiling app, the
seed's connect-per-request read, more instances of a service with other settings, e.g. inventory's cache off).
"""

from __future__ import annotations

import shutil
import subprocess
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

import httpx

from commerce_ops.local import processes
from commerce_ops.local.environment import process_env
from commerce_ops.local.ports import free_port, free_port_offset
from commerce_ops.local.runtime import GATEWAY, LocalConfig, LocalPlatform
from commerce_platform import catalogue


class LabError(RuntimeError):
    pass


class LabPlatform(LocalPlatform):
    """`LocalPlatform` plus what the bench and the chaos suite look up: process ids and the gateway's name."""

    def pid(self, name: str) -> int | None:
        record = self.state.processes.get(name)
        proc = record.process() if record else None
        return proc.pid if proc else None

    @property
    def gateway_name(self) -> str:
        return GATEWAY


@dataclass
class Extra:
    """One more uvicorn process beside the platform, on the platform's server settings."""

    name: str
    port: int
    popen: subprocess.Popen
    record: processes.ProcessRecord
    log_file: Path

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def pid(self) -> int | None:
        return self.popen.pid if self.popen.poll() is None else None

    def log_tail(self, lines: int = 15) -> str:
        try:
            return "\n".join(self.log_file.read_text(errors="replace").splitlines()[-lines:])
        except FileNotFoundError:
            return "(no output)"


@dataclass
class Lab:
    """A `LabPlatform` in its own temp folder, and the extra processes started beside it."""

    platform: LabPlatform
    work_dir: Path
    extras: dict[str, Extra] = field(default_factory=dict)

    @classmethod
    def create(
        cls,
        label: str,
        *,
        database_url: str | None = None,
        redis_url: str | None = None,
        environment: str = "prod",
        overrides: dict[str, dict[str, str]] | None = None,
        stop_timeout: float = 10.0,
        port_offset: int | None = None,
    ) -> Lab:
        """`database_url`/`redis_url` None: embedded Postgres/Redis under the lab's folder (safe to stop)."""
        work_dir = Path(tempfile.mkdtemp(prefix=f"commerce-{label}-"))
        config = LocalConfig(
            local_dir=work_dir,
            port_offset=free_port_offset() if port_offset is None else port_offset,
            database_url=database_url,
            redis_url=redis_url,
            db_prefix=f"{label}_",
            production_like=True,
            seed=False,
            stop_timeout=stop_timeout,
            environment=environment,
            env_overrides=overrides or {},
            traces=False,  # measured as deployed: prod exports no traces
        )
        return cls(LabPlatform(config), work_dir)

    def url(self, name: str) -> str:
        return self.extras[name].url if name in self.extras else self.platform.url(name)

    def start_extra(
        self,
        name: str,
        app: str,
        env: dict[str, str],
        *,
        health_path: str = "/health",
        timeout: float = 60,
        wrap: tuple[str, ...] = (),
        extra_args: tuple[str, ...] = (),
    ) -> Extra:
        """`wrap`: a command the server runs under (e.g. valgrind), before the platform's uvicorn command."""
        port = free_port()
        log_file = self.work_dir / "extras" / f"{name}.log"
        argv = [*wrap, *self.platform.uvicorn_argv(app, port), *extra_args]  # the platform's server settings
        popen, record = processes.spawn(name, argv, process_env(env), log_file, port=port)
        extra = Extra(name, port, popen, record, log_file)
        self.extras[name] = extra
        self._wait_answering(extra, health_path, timeout)
        return extra

    def start_service_copy(
        self,
        name: str,
        service: str,
        extra_args: tuple[str, ...] = (),
        *,
        wrap: tuple[str, ...] = (),
        timeout: float = 60,
        **overrides: str,
    ) -> Extra:
        """Another instance of `service`, with the platform's env for it plus `overrides` (and more uvicorn
        arguments, e.g. `--workers 2`; `wrap`: a command it runs under, e.g. valgrind)."""
        env = self.platform.service_env(service) | overrides
        return self.start_extra(
            name,
            catalogue.get(service).app,
            env,
            health_path=catalogue.READINESS_PATH,
            extra_args=extra_args,
            wrap=wrap,
            timeout=timeout,
        )

    def stop_extra(self, name: str) -> None:
        extra = self.extras.pop(name)
        processes.terminate([extra.record], self.platform.config.stop_timeout)
        extra.popen.wait(5)

    def _wait_answering(self, extra: Extra, path: str, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if extra.popen.poll() is not None:
                raise LabError(f"{extra.name} exited during start-up:\n{extra.log_tail()}")
            try:
                if httpx.get(extra.url + path, timeout=1).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            time.sleep(0.1)
        raise LabError(f"{extra.name} not answering {path} after {timeout:.0f}s:\n{extra.log_tail()}")

    def stop(self) -> None:
        """Stops every process, then removes the lab's folder (data, logs, secrets): nothing outlives a run."""
        try:
            for name in list(self.extras):
                self.stop_extra(name)
        finally:
            self.platform.stop()
            shutil.rmtree(self.work_dir, ignore_errors=True)
