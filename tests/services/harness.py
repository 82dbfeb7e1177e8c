"""Run the services as real uvicorn subprocesses against the run's Postgres and Redis (tests/conftest.py).

Used through the fixtures in tests/services/conftest.py:

- `services` (session): a `ServiceStack`. `services.start("orders")` (or the `start_service` fixture, same call)
  returns a `RunningService` with `.url`, `.log_lines()`, `.wait_for_log(predicate)` and `.log_path`; it starts
  the service once per session after its dependencies (users first: it issues the tokens everyone verifies
  through its JWKS; then the services in the catalogue's `calls`). On first start of a service its database
  `<run prefix>_<service>` is created fresh and migrations are applied with
  `service_kit.migrations.apply_migrations`. All services share the session's own Redis db index (only
  inventory keeps keys there); `services.database_url(name)` and `services.redis_client()` reach them.
- `services.start_extra(name, env={...})`: an additional, uncached instance with env overrides, e.g.
  `REDIS_URL=dead_redis_url()` ("Redis down") or `DATABASE_URL=dead_database_url()` ("Postgres unreachable").
  An override of None removes the variable. Never stop the run's Postgres/Redis. Stop the instance with
  `services.stop(instance)` or let the session end.
- `services.admin_token()` → bearer token of the bootstrapped admin; `services.register_and_login()` →
  `Account(token, user, password)` for a fresh user; `auth(token)` → headers dict.
- `services.signing_key`: the session's RSA key (`KeyPair`, PEM strings and kid) for forging tokens in tests.

Every process is stopped with SIGTERM (SIGKILL after a grace period) at session end, and gets SIGTERM from the
kernel if the test process dies first. Its stdout (the JSON log lines) goes to a file; stderr to a sibling
`.err` file. Nothing has a fixed name, so sessions running at the same time on one machine never meet.
"""

from __future__ import annotations

import asyncio
import json
import os
import secrets
import signal
import subprocess
import threading
import time
import uuid
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from functools import cache, cached_property
from pathlib import Path
from typing import Any

import httpx
import psutil
import redis
from jose import jwk

from commerce_ops.local.dataservers import RedisClaim, RunDatabases
from commerce_ops.local.ports import free_port
from commerce_ops.local.processes import die_with_parent
from commerce_ops.local.secrets import rsa_key_pair
from commerce_platform import catalogue
from commerce_platform.environments import Environment, load_environment
from commerce_platform.service_env import service_env, token_issuer
from service_kit.migrations import apply_migrations
from service_kit.serve import uvicorn_argv
from service_kit.settings import ServiceSettings

REPO_ROOT = Path(__file__).resolve().parents[2]
PYTHON = REPO_ROOT / ".venv" / "bin" / "python"
ADMIN_USERNAME = "admin"
JWT_ISSUER = ServiceSettings.model_fields["jwt_issuer"].default
JWT_AUDIENCE = ServiceSettings.model_fields["jwt_audience"].default
PORT_ATTEMPTS = 3  # starts on new ports when another process took one first (PortTaken)
START_TIMEOUT_SECONDS = 60  # generous: the machine is shared and imports are slow under load
STOP_GRACE_SECONDS = 25
ENVIRONMENT = "dev"  # whose values the services get, as `ops dev up` gives them
# Over the environment's values: INFO logs (dev's DEBUG only adds lines to read), and a pool the concurrency tests
# can fill (dev's is 5 per pod).
TEST_SETTINGS = {
    "LOG_LEVEL": "INFO",
    "DB_POOL_MIN_SIZE": "1",
    "DB_POOL_MAX_SIZE": "10",
    # A disabled user is refused within 1 s (default 30): revocation tests poll for seconds, not a minute.
    "ACTIVE_CHECK_SECONDS": "1",
}
# Per service, on top: users hashes passwords with real argon2id at its lowest cost (one pass over 1 MiB, ~1 ms
# instead of ~0.26 s of CPU): the suite registers and logs in hundreds of users, and the cost is not under test.
# Its tokens last as long as a session may (the default 15 minutes is shorter than a suite on a loaded machine,
# and session fixtures such as `admin_token` keep theirs); expiry itself is tested with tokens made to expire.
TEST_SETTINGS_BY_SERVICE = {
    "users": {
        "PASSWORD_HASH_TIME_COST": "1",
        "PASSWORD_HASH_MEMORY_KIB": "1024",
        "ACCESS_TOKEN_TTL_SECONDS": "7200",
    }
}
__all__ = ["free_port"]  # re-exported for the tests
_active: ServiceStack | None = None  # this session's stack, for the module-level helpers below


class PortTaken(RuntimeError):
    """A service exited at start-up because one of its ports was taken meanwhile."""


def dead_redis_url() -> str:
    """A Redis URL where nothing listens (a freshly freed port)."""
    return f"redis://127.0.0.1:{free_port()}/0"


def dead_database_url() -> str:
    """A Postgres URL where nothing listens."""
    return f"postgresql://postgres@127.0.0.1:{free_port()}/nowhere"


def database_url(service: str) -> str:
    """The service's database in this session's stack (see `ServiceStack.database_url`)."""
    return _stack().database_url(service)


def redis_client() -> redis.Redis:
    """A sync client on this session's Redis db (to look at cache keys directly)."""
    return _stack().redis_client()


def service_token(audience: str, caller: str = "orders") -> str:
    """A calling service's token for `audience` in this session's stack (see `ServiceStack.service_token`)."""
    return _stack().service_token(audience, caller)


def _stack() -> ServiceStack:
    if _active is None:
        raise RuntimeError(
            "no ServiceStack yet: use the `services` fixture (tests/services/conftest.py) first"
        )
    return _active


def auth(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def run_async(coro) -> Any:
    """Run a coroutine to completion from sync code, even when called inside a running event loop."""
    result: dict[str, Any] = {}

    def target() -> None:
        try:
            result["value"] = asyncio.run(coro)
        except BaseException as exc:  # re-raised in the caller's thread
            result["error"] = exc

    thread = threading.Thread(target=target)
    thread.start()
    thread.join()
    if "error" in result:
        raise result["error"]
    return result.get("value")


@dataclass(frozen=True)
class KeyPair:
    private_pem: str
    public_pem: str
    kid: str

    @classmethod
    def generate(cls, kid: str = "users-test") -> KeyPair:
        private_pem, public_pem = rsa_key_pair()
        return cls(private_pem, public_pem, kid)

    @cached_property
    def signing_key(self) -> jwk.Key:
        """The private key parsed once (python-jose parses a PEM on every `jwt.encode`: ~45 ms of CPU)."""
        return jwk.construct(self.private_pem, "RS256")


@dataclass
class RunningService:
    name: str
    url: str
    port: int
    process: subprocess.Popen
    log_path: Path
    env: dict[str, str] = field(repr=False)
    metrics_port: int | None = None

    @property
    def metrics_url(self) -> str:
        """Where the service serves /metrics: its METRICS_PORT (as in the cluster; the harness gives one), else
        the service port (as under `ops dev up`)."""
        if self.metrics_port is None:
            return f"{self.url}/metrics"
        return f"http://127.0.0.1:{self.metrics_port}/metrics"

    def log_lines(self) -> list[dict[str, Any]]:
        """The JSON log lines written so far (non-JSON lines are skipped)."""
        lines = []
        for raw in self.log_path.read_text(errors="replace").splitlines():
            try:
                record = json.loads(raw)
            except ValueError:
                continue
            if isinstance(record, dict):
                lines.append(record)
        return lines

    def wait_for_log(
        self, predicate: Callable[[dict[str, Any]], bool], timeout: float = 5.0
    ) -> dict[str, Any]:
        """The first JSON log line matching `predicate`, waiting for it (a request is logged after its response)."""
        deadline = time.monotonic() + timeout
        while True:
            for line in self.log_lines():
                if predicate(line):
                    return line
            if time.monotonic() > deadline:
                raise AssertionError(f"no matching log line from {self.name} within {timeout}s")
            time.sleep(0.05)

    def stderr_text(self) -> str:
        return self.log_path.with_suffix(".err").read_text(errors="replace")

    def alive(self) -> bool:
        return self.process.poll() is None

    def listening(self) -> bool:
        """This process holds the service port (so an answer there is its own, not another process's)."""
        try:
            connections = psutil.Process(self.process.pid).net_connections(kind="tcp")
        except psutil.NoSuchProcess:
            return False
        return any(c.status == psutil.CONN_LISTEN and c.laddr.port == self.port for c in connections)

    def port_was_taken(self) -> bool:
        """It exited because its port was taken (uvicorn logs the bind error, as JSON once the kit's logging is
        set up)."""
        output = self.stderr_text() + self.log_path.read_text(errors="replace")
        return "address already in use" in output.lower()

    def stop(self) -> int:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(STOP_GRACE_SECONDS)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(5)
        return self.process.returncode


@dataclass
class Account:
    token: str
    user: dict[str, Any]
    password: str


@cache
def _environment() -> Environment:
    return load_environment(ENVIRONMENT, REPO_ROOT)


class _StartedAddresses(Mapping[str, str]):
    """Service name → URL of the session's instance, started on first lookup."""

    def __init__(self, stack: ServiceStack) -> None:
        self._stack = stack

    def __getitem__(self, name: str) -> str:
        return self._stack.address(name)

    def __iter__(self) -> Iterator[str]:
        return iter(s.name for s in catalogue.SERVICES)

    def __len__(self) -> int:
        return len(catalogue.SERVICES)


class ServiceStack:
    def __init__(self, log_dir: Path, databases: RunDatabases, redis_db: RedisClaim) -> None:
        self.log_dir = log_dir
        self.databases = databases
        self.redis_db = redis_db
        self.signing_key = KeyPair.generate()
        self.admin_password = secrets.token_urlsafe(18)
        # Service identity: each calling service's client secret at the issuer (as the platform's secrets give).
        self.client_secrets = {s.name: secrets.token_urlsafe(32) for s in catalogue.SERVICES if s.calls}
        self._running: dict[str, RunningService] = {}
        self._launching: list[RunningService] | None = None  # the group `start` is launching, if any
        self._extras: list[RunningService] = []
        self._prepared: set[str] = set()
        global _active
        _active = self

    # --- storage ---------------------------------------------------------------------------------------
    def database_url(self, service: str) -> str:
        """The service's database in this session (superuser login on the run's server)."""
        return self.databases.url(service)

    def redis_url(self) -> str:
        return self.redis_db.url

    def redis_client(self) -> redis.Redis:
        """A sync client on the session's Redis db (to look at cache keys directly)."""
        return redis.Redis.from_url(self.redis_db.url, decode_responses=True)

    # --- env -------------------------------------------------------------------------------------------
    def _base_env(self) -> dict[str, str]:
        # Drop any settings variable inherited from the caller's shell so only what we set here counts.
        ours = set().union(*(spec.env_var_names for spec in catalogue.SERVICES))
        return {k: v for k, v in os.environ.items() if k not in ours}

    def service_env(self, name: str) -> dict[str, str]:
        """What the platform sets for `name` (`commerce_platform.service_env`, as `ops dev up`), with this
        session's addresses (the services it calls are started first) and secrets, and TEST_SETTINGS."""
        variables = service_env(_environment(), name, _StartedAddresses(self))
        secrets_by_name = {
            "DATABASE_URL": self.database_url(name),
            "REDIS_URL": self.redis_url(),
            "JWT_PRIVATE_KEY": self.signing_key.private_pem,
            "ADMIN_PASSWORD": self.admin_password,
            "SERVICE_CLIENT_SECRETS": json.dumps(self.client_secrets),
            "SERVICE_CLIENT_SECRET": self.client_secrets.get(name),
        }
        env = variables.plain | {n: secrets_by_name[n] for n in variables.secret_names} | TEST_SETTINGS
        env |= TEST_SETTINGS_BY_SERVICE.get(name, {})
        env.pop("METRICS_PORT", None)  # each instance gets a free one (_spawn)
        if name == token_issuer().name:
            env["JWT_KEY_ID"] = self.signing_key.kid
        unknown = set(env) - catalogue.get(name).env_var_names
        if unknown:
            raise AssertionError(f"{name}: harness sets env vars its settings don't read: {sorted(unknown)}")
        if env.get("ADMIN_USERNAME", ADMIN_USERNAME) != ADMIN_USERNAME:
            raise AssertionError(
                f"the {ENVIRONMENT} stack's admin is {env['ADMIN_USERNAME']}: set ADMIN_USERNAME"
            )
        return env

    # --- processes -------------------------------------------------------------------------------------
    def start(self, name: str) -> RunningService:
        """The session's instance of `name`, started on first use with the session instances of the services it
        calls: all launched at once (each knows the others' addresses from the start, as in the cluster), then
        waited for together."""
        running = self._running.get(name)
        if running is not None:
            if not running.alive():
                raise RuntimeError(
                    f"{name} exited early (code {running.process.returncode}):\n"
                    f"{running.stderr_text()[-2000:]}"
                )
            return running
        for attempt in range(PORT_ATTEMPTS):
            self._launching = []
            try:
                self._launch(name)
                for instance in self._launching:
                    self._wait_until_up(instance, "/health")
                return self._running[name]
            except BaseException as exc:
                # Another process took a port before its service bound it: the group again, on new ports (its
                # members' addresses are in each other's env). Anything else: stopped, and the error stands.
                for instance in self._launching:
                    instance.stop()
                    self._running.pop(instance.name, None)
                if not isinstance(exc, PortTaken) or attempt == PORT_ATTEMPTS - 1:
                    raise
            finally:
                self._launching = None
        raise AssertionError("unreachable")

    def address(self, name: str) -> str:
        """The URL of the session's instance of `name`: launched, not waited for, while a group is starting."""
        if self._launching is None or name in self._running:
            return self.start(name).url
        return self._launch(name).url

    def _launch(self, name: str) -> RunningService:
        env = self.service_env(name)  # launches the services it calls first
        self._prepare(name)
        instance = self._spawn_process(name, env)
        self._running[name] = instance
        self._launching.append(instance)
        return instance

    def start_extra(
        self, name: str, env: dict[str, str | None] | None = None, wait_ready: bool = False
    ) -> RunningService:
        """Another instance of `name` with env overrides (None removes a variable); session storage by default."""
        base = self.service_env(name)
        self._prepare(name)
        instance = self._spawn(name, base | (env or {}), wait_ready=wait_ready)
        self._extras.append(instance)
        return instance

    def start_extras(
        self,
        names: list[str],
        env: Callable[[str, dict[str, RunningService]], dict[str, str | None]],
        wait_ready: bool = False,
    ) -> dict[str, RunningService]:
        """Other instances of several services, launched together in `names`' order and then waited for together:
        `env(name, launched)` gives each its overrides, knowing the instances launched before it (their URLs)."""
        for attempt in range(PORT_ATTEMPTS):
            launched: dict[str, RunningService] = {}
            try:
                for name in names:
                    base = self.service_env(name)
                    self._prepare(name)
                    launched[name] = self._spawn_process(name, base | env(name, launched))
                for instance in launched.values():
                    self._wait_until_up(instance, "/ready" if wait_ready else "/health")
            except BaseException as exc:
                for instance in launched.values():
                    instance.stop()
                if not isinstance(exc, PortTaken) or attempt == PORT_ATTEMPTS - 1:
                    raise
                continue
            self._extras.extend(launched.values())
            return launched
        raise AssertionError("unreachable")

    def stop(self, instance: RunningService) -> int:
        code = instance.stop()
        if instance in self._extras:
            self._extras.remove(instance)
        return code

    def _prepare(self, name: str) -> None:
        if name not in self._prepared:
            url = self.databases.create(name)
            run_async(apply_migrations(url, catalogue.get(name).package))
            self._prepared.add(name)

    def _spawn(
        self, name: str, service_env: dict[str, str | None], wait_ready: bool = False
    ) -> RunningService:
        """Starts `name` on ports free a moment ago; should another process take one of them before the service
        binds it (any outgoing connection may get it as its ephemeral port), it starts again on new ones."""
        # A METRICS_PORT the test chose is taken on purpose: no second attempt then.
        attempts = 1 if "METRICS_PORT" in service_env else PORT_ATTEMPTS
        for attempt in range(attempts):
            instance = self._spawn_process(name, service_env)
            try:
                self._wait_until_up(instance, "/ready" if wait_ready else "/health")
                return instance
            except PortTaken:
                instance.stop()
                if attempt == attempts - 1:
                    raise
            except BaseException:
                instance.stop()
                raise
        raise AssertionError("unreachable")

    def _spawn_process(self, name: str, service_env: dict[str, str | None]) -> RunningService:
        """The service's process, started on free ports (not waited for)."""
        spec = catalogue.get(name)
        port = free_port()
        log_path = self.log_dir / f"{name}-{port}.log"
        metrics = {"METRICS_PORT": str(free_port()), "METRICS_HOST": "127.0.0.1"}
        # An override of None removes the variable (to test missing configuration).
        env = {k: v for k, v in (self._base_env() | metrics | service_env).items() if v is not None}
        cmd = uvicorn_argv(
            spec.app, port, host="127.0.0.1", graceful_shutdown=10, access_log=False, python=str(PYTHON)
        )
        with open(log_path, "wb") as out, open(log_path.with_suffix(".err"), "wb") as err:
            process = subprocess.Popen(
                cmd, env=env, stdout=out, stderr=err, cwd=REPO_ROOT, preexec_fn=die_with_parent
            )
        metrics_port = int(env["METRICS_PORT"]) if env.get("METRICS_PORT") else None
        return RunningService(
            name, f"http://127.0.0.1:{port}", port, process, log_path, service_env, metrics_port
        )

    @staticmethod
    def _wait_until_up(instance: RunningService, path: str) -> None:
        deadline = time.monotonic() + START_TIMEOUT_SECONDS
        while time.monotonic() < deadline:
            if not instance.alive():
                failed = PortTaken if instance.port_was_taken() else RuntimeError
                raise failed(
                    f"{instance.name} exited during start-up (code {instance.process.returncode}):\n"
                    f"{instance.stderr_text()[-3000:]}"
                )
            try:
                # An answer counts only once this process holds the port: a port free a moment ago can be
                # taken by another test process's service, which would answer in its place.
                if httpx.get(instance.url + path, timeout=1.0).status_code == 200 and instance.listening():
                    return
            except httpx.HTTPError:
                pass
            time.sleep(0.1)
        raise TimeoutError(f"{instance.name} did not answer {path} within {START_TIMEOUT_SECONDS}s")

    def stop_all(self) -> None:
        for instance in [*self._extras, *reversed(self._running.values())]:
            instance.stop()
        self._extras.clear()
        self._running.clear()

    # --- accounts --------------------------------------------------------------------------------------
    def login(self, username: str, password: str) -> str:
        response = httpx.post(
            self.start("users").url + "/token", data={"username": username, "password": password}, timeout=10
        )
        response.raise_for_status()
        return response.json()["access_token"]

    def service_token(self, audience: str, caller: str = "orders") -> str:
        """A calling service's token for `audience`, from the issuer (as service_kit.identity gets it)."""
        response = httpx.post(
            self.start("users").url + "/internal/token",
            data={
                "grant_type": "client_credentials",
                "client_id": caller,
                "client_secret": self.client_secrets[caller],
                "audience": audience,
            },
            timeout=10,
        )
        response.raise_for_status()
        return response.json()["access_token"]

    def admin_token(self) -> str:
        return self.login(ADMIN_USERNAME, self.admin_password)

    def register_and_login(self, prefix: str = "user") -> Account:
        username = f"{prefix}-{uuid.uuid4().hex[:12]}"
        password = secrets.token_urlsafe(16)
        response = httpx.post(
            self.start("users").url + "/users/",
            json={"username": username, "email": f"{username}@example.com", "password": password},
            timeout=10,
        )
        response.raise_for_status()
        return Account(self.login(username, password), response.json(), password)
