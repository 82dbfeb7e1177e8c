"""Fixtures every suite may use: the run's Postgres and Redis.

- `data_servers` (session): a `DataServers` with `.database_url` (a superuser URL) and `.redis_url`. `ops test`
  starts embedded servers once per run and passes them down as TEST_DATABASE_URL / TEST_REDIS_URL; a plain
  `pytest` without those starts its own, here, the first time a test asks (and stops them at the end).
- `run_databases` (session): `RunDatabases` on that server: `.create("users")` → URL of a fresh database named
  `<random run prefix>_users`; every one is dropped at the end.
- `redis_db` (session): a Redis db index of this pytest process's own (`.url`), claimed on the server and flushed
  at the end. Nothing has a fixed name, so runs sharing given servers never meet.
"""

from __future__ import annotations

import functools
import os
from collections.abc import Iterator

import httpx._transports.default
import pytest

from commerce_ops.local.dataservers import DataServers, RedisClaim, RunDatabases, claim_redis_db

# One TLS context per test process, per set of arguments. httpx builds a new ssl.SSLContext for every client it
# makes (OpenSSL 3 plus certifi's CA bundle: ~45 ms of CPU each), and the tests make thousands of short-lived
# clients (`httpx.get(...)`) to services on loopback over plain HTTP: that was a fifth of the test processes'
# CPU. A context is not changed after it is made, so one made with the same arguments serves every client.
httpx._transports.default.create_ssl_context = functools.cache(httpx._transports.default.create_ssl_context)


@pytest.fixture(scope="session")
def data_servers() -> Iterator[DataServers]:
    servers = DataServers.start(
        os.environ.get("TEST_DATABASE_URL") or None, os.environ.get("TEST_REDIS_URL") or None
    )
    with servers:
        yield servers


@pytest.fixture(scope="session")
def run_databases(data_servers: DataServers) -> Iterator[RunDatabases]:
    databases = RunDatabases(data_servers.database_url)
    try:
        yield databases
    finally:
        databases.drop_all(roles_too=True)


@pytest.fixture(scope="session")
def redis_db(data_servers: DataServers) -> Iterator[RedisClaim]:
    claim = claim_redis_db(data_servers.redis_url)
    try:
        yield claim
    finally:
        claim.release()


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """The longest files first. `ops test` hands the service suites to xdist workers a file at a time, in this
    order (`--dist loadfile --no-loadscope-reorder`; xdist's own order, most tests first, put the few-but-long
    platform files last, where one of them ran alone for minutes while the other workers idled). A file marks
    itself `pytest.mark.heavy(seconds)` with its rough wall time; the rest keep their order after the heavy ones."""

    def weight(item: pytest.Item) -> float:
        marker = item.get_closest_marker("heavy")
        return -float(marker.args[0]) if marker else 0.0

    items.sort(key=weight)  # stable: a file's tests stay in their order
