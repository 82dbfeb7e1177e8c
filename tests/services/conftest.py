"""Fixtures for the service tests: real uvicorn subprocesses on the run's Postgres and Redis (tests/conftest.py).

- `services` (session): the `harness.ServiceStack`; see tests/services/harness.py for the full description.
- `start_service` (session): `start_service("inventory")` → `RunningService` (`.url`, `.log_lines()`), started
  once per session with its dependencies, on a fresh database of this session's own.
- `admin_token` (session): a bearer token for the bootstrapped admin.
- `register_and_login` (session): `register_and_login()` → `Account(token, user, password)` for a new user.
- `alice`, `bob` (module): two customers of a test module's own.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator

import pytest
from harness import Account, RunningService, ServiceStack


@pytest.fixture(scope="session")
def services(tmp_path_factory: pytest.TempPathFactory, run_databases, redis_db) -> Iterator[ServiceStack]:
    stack = ServiceStack(tmp_path_factory.mktemp("service-logs"), run_databases, redis_db)
    try:
        yield stack
    finally:
        stack.stop_all()


@pytest.fixture(scope="session")
def start_service(services: ServiceStack) -> Callable[[str], RunningService]:
    return services.start


@pytest.fixture(scope="session")
def admin_token(services: ServiceStack) -> str:
    return services.admin_token()


@pytest.fixture(scope="session")
def register_and_login(services: ServiceStack) -> Callable[..., Account]:
    return services.register_and_login


@pytest.fixture(scope="module")
def alice(register_and_login) -> Account:
    return register_and_login("alice")


@pytest.fixture(scope="module")
def bob(register_and_login) -> Account:
    return register_and_login("bob")
