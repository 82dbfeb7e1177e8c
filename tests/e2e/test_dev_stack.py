"""`ops dev up --detach` / `status` / `down` as real subprocesses, the seed's flow over HTTP through the gateway,
clean teardown (no process, no listening port), persistence across a restart, and the same flow on Postgres and
Redis servers given by URL (the run's own, tests/conftest.py)."""

from __future__ import annotations

import asyncio
import json
import re
import signal
import subprocess
import sys
import time
import uuid
from pathlib import Path

import asyncpg
import httpx
import psutil
import pytest
from devstack import (
    OPS,
    admin_password,
    check_persisted,
    free_port_offset,
    local_dir,
    ops,
    ops_env,
    walk_flow,
)

from commerce_platform import catalogue
from commerce_platform.local.ports import listening_ports
from commerce_platform.local.seed import DEMO_PRODUCTS

pytestmark = pytest.mark.e2e


def _ports(offset: int) -> list[int]:
    return [catalogue.GATEWAY_PORT + offset, *(s.port + offset for s in catalogue.SERVICES)]


def _up(env: dict[str, str]) -> tuple[str, str, dict, str]:
    """Runs `ops dev up --detach`; returns the gateway URL, the printed admin name, state.json and the output."""
    result = ops(["dev", "up", "--detach"], env)
    output = result.stdout + result.stderr
    assert result.returncode == 0, output
    assert "Traceback" not in output
    admin = re.search(r"admin login: (\S+) / (\S+)", result.stdout)
    assert admin, result.stdout
    state = json.loads((Path(env["OPS_LOCAL_DIR"]) / "run" / "state.json").read_text())
    gateway = state["processes"]["gateway"]["url"]
    assert gateway == f"http://127.0.0.1:{catalogue.GATEWAY_PORT + int(env['OPS_PORT_OFFSET'])}"
    return gateway, admin.group(1), state, output


def _down_and_check_nothing_left(env: dict[str, str], state: dict) -> None:
    result = ops(["dev", "down"], env)
    assert result.returncode == 0, result.stdout + result.stderr
    _check_nothing_left(env, state)


def _check_nothing_left(env: dict[str, str], state: dict) -> None:
    records = [*state["processes"].values(), *([state["redis"]] if state["redis"] else [])]
    for record in records:
        try:
            proc = psutil.Process(record["pid"])
            same = abs(proc.create_time() - record["create_time"]) < 0.01
            assert not same or proc.status() == psutil.STATUS_ZOMBIE, f"{record['name']} still running"
        except psutil.NoSuchProcess:
            pass
    local_dir = env["OPS_LOCAL_DIR"]
    leftovers = [
        p.info
        for p in psutil.process_iter(["pid", "cmdline"])
        if any(local_dir in part for part in (p.info["cmdline"] or []))
    ]
    assert leftovers == [], leftovers  # embedded Postgres/Redis carry the local dir on their command line
    assert listening_ports(_ports(int(env["OPS_PORT_OFFSET"]))) == []
    assert not (Path(local_dir) / "run" / "state.json").exists()


@pytest.fixture(scope="module")
def embedded_env():
    with local_dir() as folder:
        env = {"OPS_LOCAL_DIR": str(folder), "OPS_PORT_OFFSET": str(free_port_offset())}
        yield env
        ops(["dev", "down"], env)  # safety net if a test failed half-way


@pytest.fixture(scope="module")
def embedded_stack(embedded_env):
    """The stack brought up once for this module: (gateway URL, admin name, state.json)."""
    return _up(embedded_env)


def _cluster_to_local(value: str, local_addresses: dict[str, str]) -> str:
    """Rendered in-cluster service addresses (http://<svc>.<ns>.svc.cluster.local:<port>) → the local ones."""
    return re.sub(r"http://([a-z]+)\.[a-z0-9.-]+:\d+", lambda m: local_addresses[m.group(1)], value)


# What only the laptop sets or sets differently (LocalPlatform._observability_env): metrics on loopback at the
# offset port, spans to the state folder through the console exporter (the dev cluster exports none).
LOCAL_ONLY = {"METRICS_HOST", "TRACES_FILE"}


def _local_value(name: str, rendered_value: str, offset: int) -> str:
    if name == "METRICS_PORT":
        return str(int(rendered_value) + offset)
    if name == "OTEL_TRACES_EXPORTER":
        return "console"
    return rendered_value


def test_each_service_gets_the_rendered_dev_deployments_env(embedded_stack, embedded_env):
    """Read from the running processes themselves: same names as the dev Deployment, same values except
    addresses (compared after mapping cluster → local), secrets (not compared) and LOCAL_ONLY."""
    render = subprocess.run(
        [sys.executable, str(Path(__file__).with_name("rendered_env.py")), "dev"],
        capture_output=True,
        text=True,
        timeout=240,
    )
    assert render.returncode == 0, render.stderr
    rendered = json.loads(render.stdout)
    _, _, state, _ = embedded_stack
    local_addresses = {s.name: state["processes"][s.name]["url"] for s in catalogue.SERVICES}
    assert sorted(rendered) == sorted(local_addresses)
    for spec in catalogue.SERVICES:
        environ = psutil.Process(state["processes"][spec.name]["pid"]).environ()
        local = {k: v for k, v in environ.items() if k in spec.env_var_names - LOCAL_ONLY}
        assert LOCAL_ONLY <= set(environ), spec.name
        expected = rendered[spec.name]
        assert sorted(local) == sorted(expected), spec.name
        for name, value in expected.items():
            if value is None:  # a secret: the Deployment reads it from a Secret; locally it has a local value
                assert local[name], (spec.name, name)
            else:
                offset = int(embedded_env["OPS_PORT_OFFSET"])
                wanted = _local_value(name, _cluster_to_local(value, local_addresses), offset)
                assert local[name] == wanted, (spec.name, name)


def _metrics(url: str) -> str:
    response = httpx.get(url, timeout=10)
    assert response.status_code == 200, url
    assert response.headers["content-type"].startswith("text/plain")
    return response.text


def test_metrics_and_one_orders_trace_under_ops_dev_up(embedded_env, embedded_stack):
    """Each service's /metrics (its metrics port, printed by `ops dev up`) has the request histogram by route
    template; one order through the gateway moves the saga counter and is one trace in `ops dev trace`."""
    gateway, admin_name, state, output = embedded_stack
    offset = int(embedded_env["OPS_PORT_OFFSET"])
    urls = {s.name: f"http://127.0.0.1:{s.metrics_port + offset}/metrics" for s in catalogue.SERVICES}
    for name, url in urls.items():
        assert re.search(rf"{name}\s+metrics:\s+{re.escape(url)}", output), output
        assert httpx.get(f"http://127.0.0.1:{catalogue.get(name).port + offset}/metrics").status_code == 404
    assert httpx.get(f"{gateway}/metrics").status_code == 404  # the gateway routes no /metrics either
    saga = re.compile(r'^orders_saga_outcomes_total\{outcome="completed"\} (\S+)$', re.M)
    before = float(m.group(1)) if (m := saga.search(_metrics(urls["orders"]))) else 0.0

    local = Path(embedded_env["OPS_LOCAL_DIR"])
    with httpx.Client(base_url=gateway, timeout=30) as http:
        token = http.post("/token", data={"username": admin_name, "password": admin_password(local)})
        token = token.json()["access_token"]
        request_id = f"e2e-trace-{uuid.uuid4().hex[:10]}"
        order = http.post(
            "/orders/",
            json={"product_id": 1, "quantity": 1, "shipping_address": "1 Trace Road"},
            headers={"Authorization": f"Bearer {token}", "X-Request-ID": request_id},
        )
    assert (order.status_code, order.json()["status"]) == (201, "completed"), order.text

    after = float(saga.search(_metrics(urls["orders"])).group(1))
    assert after == before + 1
    assert 'route="/orders/",status="201"' in _metrics(urls["orders"])
    assert 'route="/internal/reservations"' in _metrics(urls["inventory"])
    assert 'payments_authorizations_total{result="authorized"}' in _metrics(urls["payments"])
    assert 'route="/users/me/"' in _metrics(urls["users"])

    top = ops(["dev", "top", "--count", "1", "--interval", "1"], embedded_env)
    assert top.returncode == 0, top.stdout + top.stderr
    for name, url in urls.items():
        assert re.search(rf"^.*{name}\b.*{re.escape(url)}", top.stdout, re.M), top.stdout

    deadline = time.monotonic() + 30
    while True:
        traced = ops(["dev", "trace", request_id], embedded_env)
        if traced.returncode == 0 and all(f"{n} " in traced.stdout for n in [*urls, "gateway"]):
            break
        assert time.monotonic() < deadline, traced.stdout + traced.stderr
        time.sleep(1)
    (trace_id,) = re.findall(r"trace ([0-9a-f]{32}) \(request", traced.stdout)
    assert "POST /orders/" in traced.stdout and "POST /internal/reservations" in traced.stdout
    assert re.search(r"spans from 5 processes", traced.stdout), traced.stdout
    logs = [
        json.loads(line)
        for f in (local / "run" / "logs").glob("*.log")
        for line in f.read_text().splitlines()
        if line.startswith("{")
    ]
    assert {r["trace_id"] for r in logs if r.get("request_id") == request_id} == {trace_id}


def test_embedded_stack_flow_teardown_and_persistence(embedded_env, embedded_stack, tmp_path):
    env = embedded_env
    local_dir = Path(env["OPS_LOCAL_DIR"])
    gateway, admin_name, state, output = embedded_stack
    assert "seeded 4 demo products" in output
    assert httpx.get(f"{gateway}/products/1").json()["name"] == DEMO_PRODUCTS[0]["name"]
    assert (local_dir / "secrets.json").stat().st_mode & 0o777 == 0o600
    walked = walk_flow(gateway, admin_name, admin_password(local_dir))

    status = ops(["dev", "status"], env)
    assert status.returncode == 0, status.stdout
    for name in [*(s.name for s in catalogue.SERVICES), "gateway", "redis", "postgres"]:
        assert re.search(rf"{name}\b.*\bready\b", status.stdout), status.stdout

    again = ops(["dev", "up", "--detach"], env)
    assert again.returncode == 1, again.stdout
    assert "the local platform is already running" in " ".join(again.stdout.split())
    assert "Traceback" not in again.stdout + again.stderr
    clash = ops(["dev", "up", "--detach"], {**env, "OPS_LOCAL_DIR": str(tmp_path / "other")})
    gateway_port = catalogue.GATEWAY_PORT + int(env["OPS_PORT_OFFSET"])
    assert clash.returncode == 1, clash.stdout
    assert (
        f"port {gateway_port} (for gateway) is already in use by pid {state['processes']['gateway']['pid']}"
        in (" ".join(clash.stdout.split()))
    ), clash.stdout
    assert "Traceback" not in clash.stdout + clash.stderr

    # `ops dev logs` (for a detached stack) shows the flow's requests and ends by itself once the stack is down.
    logs = subprocess.Popen(
        [*OPS, "dev", "logs", "--from-start"],
        env=ops_env(env),
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    _down_and_check_nothing_left(env, state)
    followed, _ = logs.communicate(timeout=60)
    assert logs.returncode == 0, followed
    assert re.search(rf"^orders\s.*path=/orders/{walked.order_id}/status\s.*status=200", followed, re.M), (
        followed
    )

    gateway, admin_name, state, output = _up(env)
    assert "demo data already present" in output
    check_persisted(gateway, walked)
    _down_and_check_nothing_left(env, state)


async def _databases(admin_url: str, prefix: str) -> list[str]:
    conn = await asyncpg.connect(admin_url)
    try:
        rows = await conn.fetch(
            "SELECT datname FROM pg_database WHERE datname LIKE $1 ORDER BY 1", prefix + "%"
        )
        return [r["datname"] for r in rows]
    finally:
        await conn.close()


def _wait_for(path: Path, pattern: str, proc: subprocess.Popen, timeout: float = 180) -> str:
    """Waits until the output file has a line matching `pattern` (while the process still runs)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        output = path.read_text()
        if re.search(pattern, output, re.M):
            return output
        assert proc.poll() is None, f"ops dev up exited with {proc.returncode}:\n{output}"
        time.sleep(0.2)
    raise AssertionError(f"no line matching {pattern!r} after {timeout}s:\n{path.read_text()}")


def test_foreground_on_given_postgres_and_redis_stops_cleanly_on_ctrl_c(
    tmp_path, data_servers, run_databases, redis_db
):
    """`ops dev up` in the foreground, on DATABASE_URL/REDIS_URL: the flow works, the services' logs are followed
    in its output, and Ctrl-C (SIGINT) stops everything. Its databases and logins carry this run's prefix."""
    # `<run>_dev_`: dropped with the run's databases (tests/conftest.py), and never the `<run>_<service>`
    # databases the service tests of the same run created (ops dev up would find them, not its own).
    prefix = f"{run_databases.prefix}_dev_"
    env = {
        "OPS_LOCAL_DIR": str(tmp_path / "local"),
        "OPS_PORT_OFFSET": str(free_port_offset()),
        "DATABASE_URL": data_servers.database_url,
        "REDIS_URL": redis_db.url,
        "OPS_DB_PREFIX": prefix,
    }
    output_file = tmp_path / "ops-dev-up.txt"
    with output_file.open("w") as out:
        proc = subprocess.Popen(
            [*OPS, "dev", "up"],
            env=ops_env(env),
            stdout=out,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
        )
    try:
        output = _wait_for(output_file, "^following logs", proc)
        admin = re.search(r"admin login: (\S+) / ", output)
        assert admin, output
        state = json.loads((tmp_path / "local" / "run" / "state.json").read_text())
        assert state["postgres_data_dir"] is None and state["redis"] is None  # nothing embedded was started
        walked = walk_flow(
            state["processes"]["gateway"]["url"], admin.group(1), admin_password(tmp_path / "local")
        )
        assert asyncio.run(_databases(data_servers.database_url, prefix)) == sorted(
            f"{prefix}{s.name}" for s in catalogue.SERVICES
        )
        # The followed logs show the order's requests, from the gateway and from the orders service.
        for service in ("gateway", "orders"):
            _wait_for(output_file, rf"^{service}\s.*path=/orders/{walked.order_id}/status", proc, timeout=10)

        proc.send_signal(signal.SIGINT)
        assert proc.wait(60) == 0, output_file.read_text()
        assert "stopped" in output_file.read_text() and "Traceback" not in output_file.read_text()
        _check_nothing_left(env, state)
    finally:
        if proc.poll() is None:
            proc.kill()
            ops(["dev", "down"], env)
