"""The service kit's shared behaviour, seen from outside real service processes (inventory and users)."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import uuid

import httpx
import pytest
from harness import REPO_ROOT, auth, database_url, dead_database_url

from service_kit.migrations import apply_migrations

pytestmark = pytest.mark.heavy(20)

MIGRATE = REPO_ROOT / ".venv" / "bin" / "migrate"


@pytest.fixture(scope="module")
def inventory(start_service):
    return start_service("inventory")


async def test_migrations_are_idempotent(inventory):
    assert await apply_migrations(database_url("inventory"), "inventory_service") == []


@pytest.mark.parametrize(
    ("env", "args", "code", "message"),
    [
        ({"DATABASE_URL": "inventory"}, ["inventory_service"], 0, None),
        ({}, ["inventory_service"], 2, "migrate: DATABASE_URL is not set"),
        ({"DATABASE_URL": "inventory"}, ["no_such_service"], 1, "migrate: no_such_service: "),
        ({"DATABASE_URL": "dead"}, ["inventory_service"], 1, "migrate: inventory_service: "),
    ],
)
def test_migrate_entry_point_answers_in_one_line(inventory, env, args, code, message):
    """`env` names the database: the session's inventory one, or a dead address."""
    base = {k: v for k, v in os.environ.items() if k != "DATABASE_URL"}
    if "DATABASE_URL" in env:
        env = {
            "DATABASE_URL": dead_database_url()
            if env["DATABASE_URL"] == "dead"
            else database_url("inventory")
        }
    result = subprocess.run([str(MIGRATE), *args], env=base | env, capture_output=True, text=True, timeout=60)
    assert result.returncode == code, result.stderr
    if message is None:
        assert json.loads(result.stdout) == {
            "message": "migrations applied",
            "package": "inventory_service",
            "applied": [],
        }
    else:
        assert result.stderr.startswith(message) and len(result.stderr.strip().splitlines()) == 1


@pytest.mark.parametrize("bad_id", ["x" * 129, "has space", "semi;colon", "ü-nicode"])
def test_unsafe_request_ids_are_replaced(inventory, bad_id):
    response = httpx.get(inventory.url + "/health", headers={"X-Request-ID": bad_id.encode("utf-8")})
    assert response.headers["x-request-id"] != bad_id and len(response.headers["x-request-id"]) == 32


def test_errors_are_json_detail(inventory):
    missing = httpx.get(inventory.url + "/nowhere")
    assert missing.status_code == 404 and missing.json() == {"detail": "Not Found"}
    wrong_method = httpx.delete(inventory.url + "/products/1")
    assert wrong_method.status_code == 405 and set(wrong_method.json()) == {"detail"}


def test_jwks_is_fetched_once_with_the_forwarded_request_id(services):
    """A fresh verifier fetches users' JWKS inside the first authenticated request (which forwards its request
    id), and serves later requests from its cache."""
    users = services.start("users")
    instance = services.start_extra("inventory")
    token = services.service_token("inventory")
    try:
        first, second = f"kit-{uuid.uuid4().hex}", f"kit-{uuid.uuid4().hex}"
        for request_id in (first, second):
            response = httpx.post(
                f"{instance.url}/internal/reservations/{uuid.uuid4()}/release",
                headers=auth(token) | {"X-Request-ID": request_id},
                timeout=10,
            )
            assert response.status_code == 404  # authenticated, and no such reservation
        fetch = users.wait_for_log(lambda line: line.get("request_id") == first)
        assert fetch["path"] == "/.well-known/jwks.json" and fetch["status"] == 200
        assert not [line for line in users.log_lines() if line.get("request_id") == second]
    finally:
        services.stop(instance)


def test_missing_configuration_stops_start_up_with_a_one_line_message(services):
    with pytest.raises(RuntimeError) as failure:
        services.start_extra("inventory", env={"DATABASE_URL": None})
    message = str(failure.value)
    assert "(code 78)" in message  # EX_CONFIG, not a crash
    assert "inventory: InventorySettings: invalid environment: DATABASE_URL: Field required" in message
    assert "Traceback" not in message


def test_sigterm_shuts_down_cleanly(services):
    instance = services.start_extra("inventory")
    # uvicorn re-raises the caught SIGTERM after its graceful shutdown, so -SIGTERM is a clean exit too.
    assert services.stop(instance) in (0, -signal.SIGTERM)
    messages = [line["message"] for line in instance.log_lines()]
    assert {"stopped", "Application shutdown complete."} <= set(messages)  # the lifespan ran to its end


def test_health_and_ready_when_everything_is_up(inventory):
    assert httpx.get(inventory.url + "/health").json() == {"status": "ok"}
    ready = httpx.get(inventory.url + "/ready")
    assert ready.status_code == 200
    assert ready.json() == {"status": "ready", "checks": {"postgres": "ok", "redis": "ok"}}


def test_a_service_fails_fast_on_a_dead_database_only_in_readiness(services):
    instance = services.start_extra("users", env={"DATABASE_URL": dead_database_url()})
    try:
        assert httpx.get(instance.url + "/health").status_code == 200
        assert httpx.get(instance.url + "/ready").status_code == 503
        token = httpx.post(instance.url + "/token", data={"username": "someone", "password": "password1"})
        assert token.status_code == 503 and token.json() == {"detail": "dependency unavailable"}
    finally:
        services.stop(instance)
