"""Helpers for the e2e tests: run `ops dev ...` as a real subprocess and walk the seed's flow over HTTP."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
import time
import uuid
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import httpx

from commerce_ops.local import ports
from commerce_platform import catalogue

OPS = [str(Path(sys.executable).with_name("ops"))]  # the console script, as a developer runs it
SERVICE_SETTING_NAMES = {name for spec in catalogue.SERVICES for name in spec.env_var_names}
# The stacks these tests start hash passwords with real argon2id at its lowest cost (`ops dev up --set`, through
# OPS_DEV_SET; the service tests do the same, tests/services/harness.py): one pass over 1 MiB, ~1 ms of CPU instead
# of ~0.26 s. They register and log in dozens of users, and the cost is not under test here.
DEV_SETTINGS = {"users": {"PASSWORD_HASH_TIME_COST": "1", "PASSWORD_HASH_MEMORY_KIB": "1024"}}
OPS_DEV_SET = " ".join(
    f"{svc}.{name}={value}" for svc, given in DEV_SETTINGS.items() for name, value in given.items()
)


def free_port_offset() -> int:
    """An offset at which the gateway and all four service ports are free (a developer's stack may be on 8000):
    the e2e and CLI stacks look from 300 to below 1000 (where the bench and chaos labs start) in steps of 17, each
    pytest-xdist worker in a lane of its own so two workers never pick the same range."""
    worker = int(os.environ.get("PYTEST_XDIST_WORKER", "gw0").removeprefix("gw") or 0)
    workers = int(os.environ.get("PYTEST_XDIST_WORKER_COUNT", "1"))
    return ports.free_port_offset(first=300, step=17, attempts=41, lane=(worker, workers))


def ops_env(env: dict[str, str]) -> dict[str, str]:
    """The environment for an `ops` subprocess: the developer's DATABASE_URL/REDIS_URL etc. only if `env` sets them;
    DEV_SETTINGS for any `ops dev up` unless `env` sets OPS_DEV_SET itself."""
    base = {
        k: v for k, v in os.environ.items() if k not in SERVICE_SETTING_NAMES and not k.startswith("OPS_")
    }
    return {**base, "COLUMNS": "200", "OPS_DEV_SET": OPS_DEV_SET, **env}


def ops(args: list[str], env: dict[str, str], timeout: float = 180) -> subprocess.CompletedProcess:
    return subprocess.run(
        [*OPS, *args],
        env=ops_env(env),
        capture_output=True,
        text=True,
        timeout=timeout,
        stdin=subprocess.DEVNULL,
    )


@contextmanager
def local_dir():
    """A throw-away local folder outside pytest's basetemp: pytest re-chmods that to 0700 whenever any pytest
    session starts, which would lock out embedded Postgres (it runs as its own system user when we are root)."""
    folder = Path(tempfile.mkdtemp(prefix="ops-e2e-"))
    try:
        yield folder
    finally:
        shutil.rmtree(folder, ignore_errors=True)


@dataclass
class Walked:
    username: str
    password: str
    order_id: str
    product_id: int


def _token(http: httpx.Client, username: str, password: str) -> str:
    response = http.post("/token", data={"username": username, "password": password})
    assert response.status_code == 200, response.text
    assert response.json()["token_type"] == "bearer"
    return response.json()["access_token"]


def walk_flow(gateway_url: str, admin_username: str, admin_password: str) -> Walked:
    """register → token → /users/me/ → admin creates a product → order → status completed, all via the gateway."""
    username = f"e2e_{uuid.uuid4().hex[:10]}"
    password = "correct horse battery"
    with httpx.Client(base_url=gateway_url, timeout=15) as http:
        created = http.post(
            "/users/", json={"username": username, "email": f"{username}@example.com", "password": password}
        )
        assert created.status_code == 201, created.text
        user_token = _token(http, username, password)
        me = http.get("/users/me/", headers={"Authorization": f"Bearer {user_token}"})
        assert me.status_code == 200, me.text
        assert me.json()["username"] == username
        assert me.json()["id"] == created.json()["id"]

        admin_token = _token(http, admin_username, admin_password)
        product = http.post(
            "/products/",
            json={"name": "e2e kettle", "price": "12.50", "stock": 5},
            headers={"Authorization": f"Bearer {admin_token}"},
        )
        assert product.status_code == 201, product.text
        product_id = product.json()["id"]
        assert http.get(f"/products/{product_id}").json()["stock"] == 5

        order = http.post(
            "/orders/",
            json={"product_id": product_id, "quantity": 2, "shipping_address": "1 Test Street, Testville"},
            headers={"Authorization": f"Bearer {user_token}", "Idempotency-Key": uuid.uuid4().hex},
        )
        assert order.status_code == 201, order.text
        order_id = order.json()["order_id"]
        status = wait_for_status(http, order_id, user_token, "completed")
        assert status == "completed"
        assert http.get(f"/products/{product_id}").json()["stock"] == 3
    return Walked(username, password, order_id, product_id)


def wait_for_status(http: httpx.Client, order_id: str, token: str, wanted: str, timeout: float = 10) -> str:
    deadline = time.monotonic() + timeout
    while True:
        response = http.get(f"/orders/{order_id}/status", headers={"Authorization": f"Bearer {token}"})
        assert response.status_code == 200, response.text
        status = response.json()["status"]
        if status == wanted or time.monotonic() > deadline:
            return status
        time.sleep(0.2)


def check_persisted(gateway_url: str, walked: Walked) -> None:
    """After a restart: the same user logs in and sees the same completed order."""
    with httpx.Client(base_url=gateway_url, timeout=15) as http:
        token = _token(http, walked.username, walked.password)
        order = http.get(f"/orders/{walked.order_id}", headers={"Authorization": f"Bearer {token}"})
        assert order.status_code == 200, order.text
        assert order.json()["status"] == "completed"
        assert order.json()["product_id"] == walked.product_id


def admin_password(local_dir: Path) -> str:
    import json

    return json.loads((local_dir / "secrets.json").read_text())["admin_password"]
