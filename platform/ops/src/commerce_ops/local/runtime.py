"""`LocalPlatform`: start, inspect and stop the whole platform on this machine.

Used by `ops dev up/down/status`, the e2e tests, and the benchmark/chaos tools (which also stop, kill and restart
single services, Redis and Postgres through it).

    platform = LocalPlatform(LocalConfig(local_dir=tmp, port_offset=100, production_like=True))
    platform.start()          # returns when every service answers /ready
    platform.kill_service("orders"); platform.start_service("orders")
    platform.stop()
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from commerce_ops.local import database, ports, processes
from commerce_ops.local.environment import ENVIRONMENT, SecretValues, local_env, process_env
from commerce_ops.local.gateway_env import HEALTH_PATH, ROUTES_ENV, TIMEOUT_ENV
from commerce_ops.local.layout import LocalLayout
from commerce_ops.local.postgres import EmbeddedPostgres
from commerce_ops.local.redis import EmbeddedRedis
from commerce_ops.local.secrets import LocalSecrets, load_or_create, save
from commerce_ops.local.state import RunState
from commerce_ops.paths import repo_root
from commerce_platform import catalogue
from service_kit.serve import uvicorn_argv

if TYPE_CHECKING:
    import httpx

    # Loaded when a command needs the environment (`up`, `restart`): `status`, `down` and `logs` never do.
    from commerce_platform.environments import Environment

GATEWAY = "gateway"
HOST = "127.0.0.1"

Progress = Callable[[str], None]


class LocalPlatformError(RuntimeError):
    """A failure with a one-line, user-facing message (the CLI prints it without a traceback)."""


class AlreadyRunningError(LocalPlatformError):
    pass


DATA_STORES = ("redis", "postgres")


def process_names() -> list[str]:
    """Everything `ops dev` can start, in the order it is shown: the services, the gateway, the data stores."""
    return [*(s.name for s in catalogue.SERVICES), GATEWAY, *DATA_STORES]


@dataclass(frozen=True)
class LocalConfig:
    local_dir: Path | str | None = None  # default: $OPS_LOCAL_DIR or <repo>/.local
    port_offset: int = 0  # added to every catalogue port (gateway included)
    database_url: str | None = None  # an existing server's admin URL; None = embedded Postgres
    redis_url: str | None = None  # an existing Redis; None = embedded Redis
    db_prefix: str = ""  # prepended to each service's database/login name
    production_like: bool = False  # uvloop + httptools, access log off (benchmarks)
    seed: bool = True
    ready_timeout: float = 60.0
    stop_timeout: float = 10.0  # SIGTERM → this long to drain → SIGKILL
    gateway_timeout: float = 30.0
    # Whose values the services get (`ops dev`: dev; benchmarks may run prod's), then per-service overrides
    # ({"*": {...}} applies to all), e.g. {"inventory": {"PRODUCT_CACHE_ENABLED": "false"}} (`ops dev up --set`,
    # recorded in the state so `ops dev restart` starts a service with them again).
    environment: str = ENVIRONMENT
    env_overrides: dict[str, dict[str, str]] = field(default_factory=dict)
    traces: bool = True  # spans of the services and the gateway to <local dir>/run/traces/<name>.jsonl


class LocalPlatform:
    def __init__(self, config: LocalConfig | None = None) -> None:
        self.config = config or LocalConfig()
        self.layout = LocalLayout.resolve(self.config.local_dir)
        self.state = RunState.load(self.layout.state_file) or RunState(
            port_offset=self.config.port_offset, db_prefix=self.config.db_prefix
        )
        self._secrets: LocalSecrets | None = None
        self._environment: Environment | None = None
        self._popen: dict[str, subprocess.Popen] = {}  # our own children, so we can reap them

    @classmethod
    def attach(
        cls,
        local_dir: Path | str | None = None,
        database_url: str | None = None,
        redis_url: str | None = None,
    ) -> LocalPlatform:
        """The platform recorded in a local folder, configured as `ops dev up` configured it (ports, prefix,
        server flags), e.g. to restart one of its services from another process. The URLs of servers it was
        given are not recorded (they may hold passwords): pass them again."""
        layout = LocalLayout.resolve(local_dir)
        state = RunState.load(layout.state_file) or RunState()
        platform = cls(
            LocalConfig(
                local_dir=local_dir,
                port_offset=state.port_offset,
                db_prefix=state.db_prefix,
                database_url=database_url,
                redis_url=redis_url,
                production_like=state.production_like,
                env_overrides=state.env_overrides,
                seed=False,
            )
        )
        for given, url, variable in (
            (state.external_database, database_url, "DATABASE_URL"),
            (state.external_redis, redis_url, "REDIS_URL"),
        ):
            if given and not url:
                raise LocalPlatformError(
                    f"the platform in {layout.root} was started with {variable}; set it again for this command"
                )
        return platform

    def reload_state(self) -> None:
        """Re-read the state file (another `ops dev` process may have restarted a service)."""
        self.state = RunState.load(self.layout.state_file) or self.state

    # -- names, ports, addresses ----------------------------------------------------------------------------------
    def port(self, name: str) -> int:
        base = catalogue.GATEWAY_PORT if name == GATEWAY else catalogue.get(name).port
        return base + self.state.port_offset

    def url(self, name: str) -> str:
        return f"http://{HOST}:{self.port(name)}"

    def metrics_url(self, name: str) -> str:
        """Locally a service serves `/metrics` on its own port (no METRICS_PORT: service_kit.metrics)."""
        return f"{self.url(name)}{catalogue.METRICS_PATH}"

    def _observability_env(self, name: str) -> dict[str, str]:
        """Local-only: spans to the state folder (console exporter)."""
        if not self.config.traces:
            return {"OTEL_TRACES_EXPORTER": "none"}
        return {"OTEL_TRACES_EXPORTER": "console", "TRACES_FILE": str(self.layout.trace_file(name))}

    @property
    def gateway_url(self) -> str:
        return self.url(GATEWAY)

    def addresses(self) -> dict[str, str]:
        return {spec.name: self.url(spec.name) for spec in catalogue.SERVICES}

    def role(self, service: str) -> str:
        return f"{self.state.db_prefix}{catalogue.get(service).database}"

    @property
    def secrets(self) -> LocalSecrets:
        if self._secrets is None:
            self._secrets, created = load_or_create(self.layout.secrets_file)
            if created:
                self.layout.ensure()  # its .gitignore first: the folder never holds secrets unignored
                save(self.layout.secrets_file, self._secrets)
        return self._secrets

    @property
    def postgres(self) -> EmbeddedPostgres:
        return EmbeddedPostgres(self.layout.postgres_dir, self.secrets.postgres_password)

    @property
    def redis(self) -> EmbeddedRedis:
        return EmbeddedRedis(self.layout.redis_dir)

    # -- what each service receives -------------------------------------------------------------------------------
    def admin_database_url(self) -> str:
        return self.config.database_url or self.postgres.admin_url()

    def database_url(self, service: str) -> str:
        role = self.role(service)
        return database.service_url(self.admin_database_url(), role, self.secrets.database_password(role))

    def redis_url(self) -> str:
        return self.config.redis_url or self.redis.url()

    def secret_values(self) -> SecretValues:
        return SecretValues(
            database_urls={spec.name: self.database_url(spec.name) for spec in catalogue.SERVICES},
            redis_url=self.redis_url(),
            jwt_private_key=self.secrets.jwt_private_key,
            admin_username=self.admin_username,
            admin_password=self.secrets.admin_password,
            client_secrets=self.client_secrets(),
        )

    def client_secrets(self) -> dict[str, str]:
        """Each calling service's client secret; ones made now are saved before any service gets them."""
        known = dict(self.secrets.client_secrets)
        found = {
            spec.name: self.secrets.client_secret(spec.name) for spec in catalogue.SERVICES if spec.calls
        }
        if found != known:
            save(self.layout.secrets_file, self.secrets)
        return found

    @property
    def environment(self) -> Environment:
        """The environment whose values the services get (`ops dev`: dev), loaded and validated once."""
        if self._environment is None:
            from commerce_platform.environments import load_environment

            self._environment = load_environment(self.config.environment)
        return self._environment

    @property
    def admin_username(self) -> str:
        """The platform's dev admin name (from the stack config, via service_env), with the local password."""
        from commerce_platform.service_env import service_env

        users = service_env(self.environment, "users", self.addresses()).plain
        return users.get("ADMIN_USERNAME", self.secrets.admin_username)

    def service_env(self, service: str) -> dict[str, str]:
        env = local_env(self.environment, service, self.addresses(), self.secret_values())
        # In the cluster /metrics has a port of its own (the NetworkPolicy admits the monitoring namespace there
        # alone); on a laptop it stays on the service port, `curl localhost:8001/metrics` (service_kit.metrics).
        env.pop("METRICS_PORT", None)
        env |= self._observability_env(service)
        overrides = self.config.env_overrides
        return env | overrides.get("*", {}) | overrides.get(service, {})

    # -- start ----------------------------------------------------------------------------------------------------
    def running(self) -> list[str]:
        """Names of the recorded processes (services, gateway, embedded Redis/Postgres) still alive."""
        alive = [name for name, rec in self.state.processes.items() if rec.alive]
        if self.state.redis and self.state.redis.alive:
            alive.append("redis")
        if self.state.postgres_data_dir and self.postgres.pid is not None:
            alive.append("postgres")
        return alive

    def leftovers(self) -> list[processes.OwnProcess]:
        """Processes this local folder started that its state does not record: left over from an earlier run
        whose state file (or whole folder) was deleted while they ran."""
        recorded = {rec.pid for rec in self.state.processes.values()}
        if self.state.redis:
            recorded.add(self.state.redis.pid)
        if self.state.postgres_data_dir and (pid := self.postgres.pid) is not None:
            recorded.add(pid)
        return [own for own in self._find_own() if own.pid not in recorded]

    def start(self, progress: Progress | None = None) -> None:
        """Start everything and return once all services and the gateway are ready. On failure, stop what was
        started and raise LocalPlatformError."""
        say = progress or (lambda _msg: None)
        if running := self.running():
            down = [name for name in self.state.processes if name not in running]
            restart = f"; `ops dev restart {' '.join(down)}` starts what is down" if down else ""
            raise AlreadyRunningError(
                f"the local platform is already running from {self.layout.root} ({', '.join(running)}); "
                f"see `ops dev status`, or stop it with `ops dev down`{restart}"
            )
        if leftovers := self.leftovers():
            raise AlreadyRunningError(
                f"{describe_leftovers(leftovers)} from {self.layout.root}; stop them with `ops dev down`"
            )
        self.state = RunState(
            port_offset=self.config.port_offset,
            db_prefix=self.config.db_prefix,
            supervisor_pid=os.getpid(),
            production_like=self.config.production_like,
            env_overrides=self.config.env_overrides,
            external_database=self.config.database_url is not None,
            external_redis=self.config.redis_url is not None,
        )
        wanted = {GATEWAY: self.port(GATEWAY)} | {
            spec.name: self.port(spec.name) for spec in catalogue.SERVICES
        }
        try:
            ports.check_ports_free(wanted)
        except ports.PortInUseError as exc:
            raise LocalPlatformError(f"{exc}; stop it, or pick other ports with --port-offset") from None
        self.layout.ensure()
        self._rotate_logs()
        try:
            self._start_data_stores(say)
            self._prepare_databases(say)
            for spec in catalogue.SERVICES:
                self.start_service(spec.name)
            self._start_gateway()
            say("waiting for services to be ready")
            self.wait_ready()
            if self.config.seed:
                from commerce_ops.local import seed

                created = seed.seed_products(
                    self.database_url("inventory"),
                    self.url("users"),
                    self.url("inventory"),
                    self.admin_username,
                    self.secrets.admin_password,
                )
                if created:
                    ids = ", ".join(f"{p['id']} ({p['name']})" for p in created)
                    say(f"seeded {len(created)} demo products: {ids}")
                else:
                    say("demo data already present (GET /products/ lists them)")
        except BaseException as exc:
            say("start failed; stopping what was started")
            self.stop()
            if isinstance(exc, (LocalPlatformError, KeyboardInterrupt)):
                raise
            raise LocalPlatformError(f"{type(exc).__name__}: {exc}") from exc

    def _start_data_stores(self, say: Progress) -> None:
        if self.config.database_url is None:
            say("starting embedded Postgres")
            # Recorded first, so a start that fails half-way is still stopped by `stop()` / `ops dev down`.
            self.state.postgres_data_dir = str(self.layout.postgres_dir)
            self._save_state()
            self.postgres.start()
        else:
            say("using Postgres from DATABASE_URL")
        if self.config.redis_url is None:
            say("starting embedded Redis")
            self.start_redis()
        else:
            say("using Redis from REDIS_URL")
            _check_redis(self.config.redis_url)

    def _prepare_databases(self, say: Progress) -> None:
        say("creating databases and logins")
        logins = {
            self.role(spec.name): self.secrets.database_password(self.role(spec.name))
            for spec in catalogue.SERVICES
            if spec.uses_postgres
        }
        save(self.layout.secrets_file, self.secrets)  # new service passwords are kept before they are used
        try:
            database.ensure_databases(self.admin_database_url(), logins)
            say("running migrations")
            database.run_migrations(
                {
                    spec.package: self.database_url(spec.name)
                    for spec in catalogue.SERVICES
                    if spec.uses_postgres
                }
            )
        except database.DatabaseSetupError as exc:
            hint = ""
            if self.config.database_url is None and "InvalidPassword" in str(exc):
                hint = (
                    f" (the embedded Postgres data in {self.layout.postgres_dir} was made with other secrets; "
                    f"restore {self.layout.secrets_file} or remove both to start afresh)"
                )
            raise LocalPlatformError(f"{exc}{hint}") from None

    def _rotate_logs(self) -> None:
        """Each `up` starts fresh logs; the previous run's stay beside them as `<name>.log.1`."""
        for log in self.layout.logs_dir.glob("*.log"):
            log.replace(log.with_suffix(".log.1"))
        for spans in self.layout.traces_dir.glob("*.jsonl"):
            spans.replace(spans.with_suffix(".jsonl.1"))

    def uvicorn_argv(self, app: str, port: int, gateway: bool = False) -> list[str]:
        """The command line this platform serves `app` with (its server settings), e.g. for a benchmark's extra
        app that must run exactly like the services."""
        return uvicorn_argv(
            app,
            port,
            host=HOST,
            graceful_shutdown=max(1, int(self.config.stop_timeout) - 2),
            # The gateway is built by a factory from env; it is the edge, so it must not believe a caller's
            # X-Forwarded-For.
            factory=gateway,
            proxy_headers=not gateway,
            production_like=self.config.production_like,
            access_log=not self.config.production_like,
            python=sys.executable,
        )

    def start_service(self, name: str) -> None:
        """Start one service process (not waiting for readiness: see `wait_ready`)."""
        spec = catalogue.get(name)
        env = process_env(self.service_env(name))
        self._spawn(name, self.uvicorn_argv(spec.app, self.port(name)), env)

    def _start_gateway(self) -> None:
        routes = {
            prefix: self.url(spec.name) for spec in catalogue.SERVICES for prefix in spec.public_prefixes
        }
        env = {
            **os.environ,
            "PYTHONUNBUFFERED": "1",
            ROUTES_ENV: json.dumps(routes),
            TIMEOUT_ENV: str(self.config.gateway_timeout),
            **self._observability_env(GATEWAY),
        }
        self._spawn(
            GATEWAY,
            self.uvicorn_argv("commerce_ops.local.gateway:app_from_env", self.port(GATEWAY), gateway=True),
            env,
        )

    def _spawn(self, name: str, argv: list[str], env: dict[str, str]) -> None:
        popen, record = processes.spawn(
            name,
            argv,
            env | processes.marks(self.layout.root, name),
            self.layout.log_file(name),
            cwd=repo_root(),
            port=self.port(name),
            url=self.url(name),
        )
        self._popen[name] = popen
        self.state.processes[name] = record
        self._save_state()

    def start_redis(self) -> None:
        popen = self.redis.start()
        self._popen["redis"] = popen
        self.state.redis = processes.ProcessRecord(
            name="redis",
            pid=popen.pid,
            create_time=_create_time(popen.pid),
            log_file=str(self.redis.log_file),
        )
        self._save_state()

    def wait_ready(self, names: list[str] | None = None, timeout: float | None = None) -> None:
        """Poll each process's readiness endpoint until all answer 200; a process that exits fails fast."""
        names = names or [*(s.name for s in catalogue.SERVICES), GATEWAY]
        deadline = time.monotonic() + (timeout or self.config.ready_timeout)
        pending = set(names)
        import httpx  # on use: `ops dev down` and `logs` never ask a process

        with httpx.Client(timeout=2) as http:
            while pending:
                for name in sorted(pending):
                    if not self.state.processes[name].alive:
                        raise LocalPlatformError(f"{name} exited during start-up:\n{self.log_tail(name)}")
                    # Ready, and on a socket of its own: not another stack that took the port first (ours then
                    # exits with "address already in use", reported above on the next round).
                    if self._ready(http, name) and self._listens(name):
                        pending.discard(name)
                if pending and time.monotonic() > deadline:
                    raise LocalPlatformError(
                        f"not ready after {timeout or self.config.ready_timeout:.0f}s: {', '.join(sorted(pending))}"
                        + "".join(f"\n--- {n} ---\n{self.log_tail(n)}" for n in sorted(pending))
                    )
                if pending:
                    time.sleep(0.1)

    def _listens(self, name: str) -> bool:
        """Whether our recorded process for `name` is the one listening on its port."""
        import psutil

        proc = self.state.processes[name].process()
        if proc is None:
            return False
        try:
            connections = proc.net_connections(kind="tcp")
        except psutil.Error:
            return True  # cannot tell (another user's process?): trust the readiness answer
        return any(c.status == psutil.CONN_LISTEN and c.laddr.port == self.port(name) for c in connections)

    def _ready(self, http: httpx.Client, name: str) -> bool:
        import httpx

        path = HEALTH_PATH if name == GATEWAY else catalogue.READINESS_PATH
        try:
            return http.get(self.url(name) + path).status_code == 200
        except httpx.HTTPError:
            return False

    def log_tail(self, name: str, lines: int = 15) -> str:
        try:
            return "\n".join(self.layout.log_file(name).read_text(errors="replace").splitlines()[-lines:])
        except FileNotFoundError:
            return "(no output)"

    # -- status ---------------------------------------------------------------------------------------------------
    def status(self) -> list[dict]:
        """One row per process: name, url, pid, alive, ready."""
        rows = []
        order = [*(s.name for s in catalogue.SERVICES), GATEWAY]
        recorded = sorted(self.state.processes.items(), key=lambda item: order.index(item[0]))
        import httpx  # on use: `ops dev down` and `logs` never ask a process

        with httpx.Client(timeout=1) as http:
            for name, rec in recorded:
                alive = rec.alive
                rows.append(
                    {
                        "name": name,
                        "url": rec.url,
                        "pid": rec.pid,
                        "alive": alive,
                        "ready": alive and self._ready(http, name),
                    }
                )
        if self.state.redis:
            alive = self.state.redis.alive
            rows.append(
                {
                    "name": "redis",
                    "url": f"unix socket {self.redis.socket_path}",
                    "pid": self.state.redis.pid,
                    "alive": alive,
                    "ready": alive and self.redis.ping(),
                }
            )
        if self.state.postgres_data_dir:
            pid = self.postgres.pid
            rows.append(
                {
                    "name": "postgres",
                    "url": f"unix socket in {self.postgres.socket_dir}",
                    "pid": pid,
                    "alive": pid is not None,
                    "ready": pid is not None,
                }
            )
        return rows

    # -- stop -----------------------------------------------------------------------------------------------------
    def stop(self) -> list[str]:
        """Stop everything this local folder started: gateway first, then services (SIGTERM, drain, SIGKILL after
        stop_timeout), then Redis and Postgres. Returns the names that had to be killed."""
        gateway = [rec for name, rec in self.state.processes.items() if name == GATEWAY]
        services = [rec for name, rec in self.state.processes.items() if name != GATEWAY]
        killed = processes.terminate(gateway, self.config.stop_timeout)
        killed += processes.terminate(services, self.config.stop_timeout)
        if self.state.redis:
            # With its folder gone Redis cannot save its snapshot, and then refuses to exit on SIGTERM.
            drain = self.config.stop_timeout if self.layout.redis_dir.exists() else 0
            killed += processes.terminate([self.state.redis], drain)
        if self.state.postgres_data_dir:
            self.postgres.stop(timeout=self.config.stop_timeout)
        # Whatever this folder started that the state lost track of (its folder deleted while running, say).
        gone = frozenset({"redis"} if not self.layout.redis_dir.exists() else ())
        killed += processes.stop_own(self._find_own(), self.config.stop_timeout, kill_at_once=gone)
        self._reap()
        self.state.processes.clear()
        self.state.redis = None
        self.state.postgres_data_dir = None
        self.layout.state_file.unlink(missing_ok=True)
        return killed

    def stop_service(self, name: str, timeout: float | None = None) -> None:
        """Graceful: SIGTERM, drain, SIGKILL after the timeout."""
        processes.terminate([self.state.processes[name]], timeout or self.config.stop_timeout)
        self._reap()

    def kill_service(self, name: str) -> None:
        """A crash: SIGKILL, no draining."""
        proc = self.state.processes[name].process()
        if proc is not None:
            proc.send_signal(signal.SIGKILL)
            proc.wait(5)
        self._reap()

    def restart_service(self, name: str) -> None:
        self.stop_service(name)
        self.start_service(name)
        self.wait_ready([name])

    def restart(self, name: str) -> None:
        """Stop (if it still runs) and start again one process of a running platform: a service, the gateway,
        or the embedded Redis or Postgres; returns once it is ready."""
        if name == "redis":
            if self.state.redis is None:
                raise LocalPlatformError(
                    "Redis is not embedded here (REDIS_URL); restart that server yourself"
                )
            self.stop_redis()
            self.start_redis()
        elif name == "postgres":
            if not self.state.postgres_data_dir:
                raise LocalPlatformError(
                    "Postgres is not embedded here (DATABASE_URL); restart that server yourself"
                )
            self.stop_postgres()
            self.start_postgres()
        else:
            if name in self.state.processes:
                self.stop_service(name)
            if name == GATEWAY:
                self._start_gateway()
            else:
                self.start_service(name)
            self.wait_ready([name])

    def stop_redis(self) -> None:
        if self.state.redis:
            processes.terminate([self.state.redis], self.config.stop_timeout)
            self._reap()

    def stop_postgres(self, mode: str = "fast") -> None:
        """`fast` is a clean shutdown; `immediate` simulates a crash."""
        self.postgres.stop(timeout=self.config.stop_timeout, mode=mode)

    def start_postgres(self) -> None:
        self.postgres.start()

    def _reap(self) -> None:
        for name, popen in list(self._popen.items()):
            if popen.poll() is not None:
                del self._popen[name]

    def _find_own(self) -> list[processes.OwnProcess]:
        """What this folder started, found by marks rather than by the state file (see processes.find_own).
        Its embedded servers are matched by their paths only: no secrets needed, so this works without the
        folder."""
        signatures = {
            "postgres": EmbeddedPostgres(self.layout.postgres_dir, "").command_line,
            "redis": self.redis.command_line,
        }
        return processes.find_own(self.layout.root, signatures)

    def _save_state(self) -> None:
        self.state.save(self.layout.state_file)


def _check_redis(url: str) -> None:
    """Fail fast with one line when the given Redis is unreachable (rather than services never getting ready)."""
    import redis

    try:
        client = redis.Redis.from_url(url, socket_timeout=2, socket_connect_timeout=2)
    except ValueError as exc:
        raise LocalPlatformError(f"REDIS_URL is not a valid Redis URL: {exc}") from None
    try:
        client.ping()
    except redis.RedisError as exc:
        raise LocalPlatformError(f"cannot reach Redis at REDIS_URL: {exc}") from None
    finally:
        client.close()


def _create_time(pid: int) -> float:
    import psutil

    return psutil.Process(pid).create_time()


def describe_leftovers(found: list[processes.OwnProcess]) -> str:
    """`3 processes left over from an earlier run (users pid 12, gateway pid 13, postgres pid 9) are still
    running`."""
    order = process_names()
    ranked = sorted(found, key=lambda own: order.index(own.name) if own.name in order else len(order))
    names = ", ".join(f"{own.name} pid {own.pid}" for own in ranked)
    plural = "process" if len(found) == 1 else "processes"
    verb = "is" if len(found) == 1 else "are"
    return f"{len(found)} {plural} left over from an earlier run ({names}) {verb} still running"
