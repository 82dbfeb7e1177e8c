"""`ops dev up --detach` / `status` / `down` as real subprocesses, the seed's flow over HTTP through the gateway,
clean teardown (no process, no listening port), persistence across a restart, and the same flow on Postgres and
Redis servers given by URL (the run's own, tests/conftest.py)."""

from __future__ import annotations

import asyncio
import json
import re
import shutil
import signal
import socket
import subprocess
import sys
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import asyncpg
import httpx
import psutil
import pytest
from devstack import (
    DEV_SETTINGS,
    OPS,
    admin_password,
    check_persisted,
    free_port_offset,
    local_dir,
    ops,
    ops_env,
    walk_flow,
)

from commerce_ops.local import observe
from commerce_ops.local.ports import listening_ports
from commerce_ops.local.runtime import LocalConfig, LocalPlatform
from commerce_ops.local.seed import DEMO_PRODUCTS
from commerce_platform import catalogue

pytestmark = [pytest.mark.e2e, pytest.mark.heavy(95)]


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
        platform = LocalPlatform(LocalConfig(local_dir=folder))
        if platform.running() or platform.leftovers():  # safety net if a test failed half-way
            ops(["dev", "down"], env)


@pytest.fixture(scope="module")
def embedded_stack(embedded_env):
    """The stack brought up once for this module: (gateway URL, admin name, state.json)."""
    return _up(embedded_env)


def _cluster_to_local(value: str, local_addresses: dict[str, str]) -> str:
    """Rendered in-cluster service addresses (http://<svc>.<ns>.svc.cluster.local:<port>) → the local ones."""
    return re.sub(r"http://([a-z]+)\.[a-z0-9.-]+:\d+", lambda m: local_addresses[m.group(1)], value)


# What only the laptop sets or sets differently (LocalPlatform._observability_env): spans to the state folder
# through the console exporter (the dev cluster exports none). What only the cluster sets: METRICS_PORT (locally
# /metrics stays on the service port).
LOCAL_ONLY = {"TRACES_FILE"}
CLUSTER_ONLY = {"METRICS_PORT"}


def _local_value(name: str, rendered_value: str) -> str:
    if name == "OTEL_TRACES_EXPORTER":
        return "console"
    return rendered_value


def test_each_service_gets_the_rendered_dev_deployments_env(embedded_stack, embedded_env):
    """Read from the running processes themselves: same names as the dev Deployment, same values except
    addresses (compared after mapping cluster → local), secrets (not compared) and LOCAL_ONLY; and the settings
    these tests give `ops dev up --set` (devstack.DEV_SETTINGS) reached their service, in place of dev's."""
    render = subprocess.run(
        [sys.executable, str(Path(__file__).with_name("rendered_env.py")), "dev"],
        capture_output=True,
        text=True,
        timeout=240,
    )
    assert render.returncode == 0, render.stderr
    rendered = json.loads(render.stdout)
    _, _, state, _ = embedded_stack
    assert state["env_overrides"] == DEV_SETTINGS  # recorded, so `ops dev restart` gives them again
    local_addresses = {s.name: state["processes"][s.name]["url"] for s in catalogue.SERVICES}
    assert sorted(rendered) == sorted(local_addresses)
    for spec in catalogue.SERVICES:
        environ = psutil.Process(state["processes"][spec.name]["pid"]).environ()
        given = DEV_SETTINGS.get(spec.name, {})
        assert {k: environ.get(k) for k in given} == given, spec.name
        local = {k: v for k, v in environ.items() if k in spec.env_var_names - LOCAL_ONLY - given.keys()}
        assert LOCAL_ONLY <= set(environ), spec.name
        expected = {k: v for k, v in rendered[spec.name].items() if k not in CLUSTER_ONLY | given.keys()}
        assert CLUSTER_ONLY <= set(rendered[spec.name]) and not CLUSTER_ONLY & set(environ), spec.name
        assert sorted(local) == sorted(expected), spec.name
        for name, value in expected.items():
            if value is None:  # a secret: the Deployment reads it from a Secret; locally it has a local value
                assert local[name], (spec.name, name)
            else:
                wanted = _local_value(name, _cluster_to_local(value, local_addresses))
                assert local[name] == wanted, (spec.name, name)


def _metrics(url: str) -> str:
    response = httpx.get(url, timeout=10)
    assert response.status_code == 200, url
    assert response.headers["content-type"].startswith("text/plain")
    return response.text


def test_metrics_and_one_orders_trace_under_ops_dev_up(embedded_env, embedded_stack):
    """Each service's /metrics (`curl :8001/metrics` … `:8004`, plus the port offset; printed by `ops dev up`) has
    the request histogram by route template; one order through the gateway moves the saga counter and is one
    trace in `ops dev trace`."""
    gateway, admin_name, state, output = embedded_stack
    offset = int(embedded_env["OPS_PORT_OFFSET"])
    urls = {s.name: f"http://127.0.0.1:{s.port + offset}/metrics" for s in catalogue.SERVICES}
    for name, url in urls.items():
        assert re.search(rf"{name}\s+metrics:\s+{re.escape(url)}", output), output
    assert httpx.get(f"{gateway}/metrics").status_code == 404  # the gateway routes no /metrics
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

    # The exporters write spans in batches: wait (reading the files `ops dev trace` reads) until the request's spans
    # from all five processes are there, then run `ops dev trace` once.
    deadline = time.monotonic() + 30
    while len(_traced_processes(local, request_id)) < 5:
        assert time.monotonic() < deadline, _traced_processes(local, request_id)
        time.sleep(0.5)
    traced = ops(["dev", "trace", request_id], embedded_env)
    assert traced.returncode == 0, traced.stdout + traced.stderr
    assert all(f"{n} " in traced.stdout for n in [*urls, "gateway"]), traced.stdout
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


def _traced_processes(local: Path, request_id: str) -> set[str]:
    """The processes with a span, in the state folder's span files, of a trace logged with `request_id`."""
    trace_ids = observe.trace_ids_for(request_id, sorted((local / "run" / "logs").glob("*.log")))
    span_files = sorted((local / "run" / "traces").glob("*.jsonl"))
    return {span.service for trace_id in trace_ids for span in observe.spans_of(trace_id, span_files)}


def _raw_get(url: str, path: str) -> bytes:
    """A request line sent as it is (httpx would resolve the dot segments before sending)."""
    host, port = url.removeprefix("http://").split(":")
    with socket.create_connection((host, int(port)), timeout=15) as sock:
        sock.sendall(f"GET {path} HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n".encode())
        answer = b""
        while chunk := sock.recv(65536):
            answer += chunk
        return answer


def _account(http: httpx.Client, prefix: str) -> tuple[dict, str, str]:
    name, password = f"{prefix}_{uuid.uuid4().hex[:10]}", f"pw-{uuid.uuid4().hex}"
    user = http.post("/users/", json={"username": name, "email": f"{name}@example.com", "password": password})
    assert user.status_code == 201, user.text
    token = http.post("/token", data={"username": name, "password": password}).json()["access_token"]
    return user.json(), password, token


def _in_thread(coro):
    """Run a coroutine in a thread of its own: asyncio.run in the main thread would leave it without an event
    loop, which the Pulumi import of a later test in this process (tests/cli) needs."""
    with ThreadPoolExecutor(max_workers=1) as pool:
        return pool.submit(asyncio.run, coro).result()


async def _order_all(gateway: str, requests: list[tuple[str, dict]]) -> list[httpx.Response]:
    limits = httpx.Limits(max_connections=len(requests))
    async with httpx.AsyncClient(base_url=gateway, timeout=120, limits=limits) as client:
        return await asyncio.gather(
            *(
                client.post("/orders/", json=body, headers={"Authorization": f"Bearer {token}"})
                for token, body in requests
            )
        )


def test_issue_14_done_when_against_ops_dev_up(embedded_env, embedded_stack):
    """The issue's "done when" list, against the stack `ops dev up` runs: through its gateway, and on the
    services' own ports for the internal endpoints (which the gateway does not route at all)."""
    gateway, admin_name, _, output = embedded_stack
    offset = int(embedded_env["OPS_PORT_OFFSET"])
    local = Path(embedded_env["OPS_LOCAL_DIR"])
    direct = {s.name: f"http://127.0.0.1:{s.port + offset}" for s in catalogue.SERVICES}
    assert re.search(r"seeded 4 demo products: 1 \(Espresso beans 1 kg\), 2 ", output), output
    with httpx.Client(base_url=gateway, timeout=30) as http:
        admin = http.post("/token", data={"username": admin_name, "password": admin_password(local)})
        admin_auth = {"Authorization": f"Bearer {admin.json()['access_token']}"}
        user, password, token = _account(http, "e14")
        bearer = {"Authorization": f"Bearer {token}"}

        # A disabled user's token stops working within 60 s: disabled first, watched once a second in a thread of
        # its own while the checks below run (the users service re-checks a token's user every 30 s, dev's value).
        victim, _, victim_token = _account(http, "e14off")
        victim_auth = {"Authorization": f"Bearer {victim_token}"}
        assert http.get("/orders/", headers=victim_auth).status_code == 200
        assert (
            http.patch(f"/users/{victim['id']}", json={"is_active": False}, headers=admin_auth).status_code
            == 200
        )
        watcher = ThreadPoolExecutor(max_workers=1)
        refused_after = watcher.submit(_seconds_until_refused, gateway, victim_auth, time.monotonic(), 60)

        # A user token on each internal endpoint: 403.
        some = str(uuid.uuid4())
        internal = [
            ("inventory", "/internal/reservations", {"order_id": some, "product_id": 1, "quantity": 1}),
            ("inventory", f"/internal/reservations/{some}/release", None),
            ("payments", "/internal/payments", {"order_id": some, "amount": "1.00", "currency": "USD"}),
            ("payments", f"/internal/payments/{some}/refund", None),
        ]
        for service, path, body in internal:
            headers = bearer | {"Idempotency-Key": some, "X-Acting-User": token}
            assert httpx.post(direct[service] + path, json=body, headers=headers).status_code == 403, path
        lookup = httpx.get(
            direct["payments"] + "/internal/payments", params={"order_id": some}, headers=bearer
        )
        assert lookup.status_code == 403
        # ... and through the gateway, not even reachable.
        assert _raw_get(gateway, "/products/../internal/reservations").startswith(b"HTTP/1.1 404")
        assert _raw_get(gateway, "/products/%2e%2e/internal/payments").startswith(b"HTTP/1.1 404")

        # A customer cannot refund a completed order; cancelling it refunds and gives the stock back.
        product = http.post(
            "/products/", json={"name": "e14 kettle", "price": "10.00", "stock": 5}, headers=admin_auth
        ).json()
        order = http.post("/orders/", json=order_body(product["id"], 2), headers=bearer).json()
        assert order["status"] == "completed", order
        refund = http.post(f"/payments/{order['payment_id']}/refund", headers=bearer)
        assert refund.status_code == 403
        assert http.get(f"/orders/{order['order_id']}", headers=bearer).json()["status"] == "completed"

        # A NUL byte is 422; a 2 MiB body is 413.
        nul = http.post("/orders/", json=order_body(product["id"], 1, "1 Main St\x00"), headers=bearer)
        assert nul.status_code == 422
        assert http.post("/users/", content=b" " * (2 * 1024 * 1024)).status_code == 413

        # Listing, through the gateway: products (public, paginated) and the caller's orders.
        page = http.get("/products/", params={"limit": 2})
        assert page.status_code == 200 and len(page.json()["items"]) == 2 and page.json()["next_after"]
        mine = http.get("/orders/", headers=bearer)
        assert [o["order_id"] for o in mine.json()] == [order["order_id"]]
        docs = http.get("/docs")
        assert docs.status_code == 200 and "/docs/assets/swagger-ui-bundle.js" in docs.text
        assert http.get("/docs/assets/swagger-ui-bundle.js").status_code == 200
        spec = http.get("/openapi.json").json()
        assert {"/products/", "/orders/", "/orders/{order_id}/cancel", "/token"} <= set(spec["paths"])
        assert not [p for p in spec["paths"] if p.startswith("/internal")]

        # 50 wrong passwords in a row: 429s (with Retry-After) after the first ten.
        guesses = [
            http.post("/token", data={"username": user["username"], "password": f"x-{i}"}) for i in range(50)
        ]
        assert [g.status_code for g in guesses] == [401] * 10 + [429] * 40
        assert all(g.headers["retry-after"].isdigit() for g in guesses[10:])

        # 100 concurrent orders on stock 40: exactly 40 complete.
        scarce = http.post(
            "/products/", json={"name": "e14 limited", "price": "3.50", "stock": 40}, headers=admin_auth
        ).json()
        buyers = [_account(http, "e14crowd")[2] for _ in range(20)]
    requests = [(buyer, order_body(scarce["id"], 1)) for buyer in buyers for _ in range(5)]
    outcomes = _in_thread(_order_all(gateway, requests))
    assert all(r.status_code == 201 for r in outcomes), [r.text for r in outcomes if r.status_code != 201][:3]
    statuses = [r.json()["status"] for r in outcomes]
    assert (statuses.count("completed"), statuses.count("failed")) == (40, 60)
    assert httpx.get(f"{gateway}/products/{scarce['id']}").json()["stock"] == 0
    seconds = refused_after.result()
    watcher.shutdown()
    assert seconds is not None, "a disabled user's token still works after 60 s"


def _seconds_until_refused(gateway: str, auth: dict[str, str], started: float, limit: float) -> float | None:
    """Asks once a second until the token is refused (401): how long after `started` that was, or None when it was
    still accepted `limit` seconds after."""
    with httpx.Client(base_url=gateway, timeout=30) as http:
        while (elapsed := time.monotonic() - started) < limit:
            if http.get("/orders/", headers=auth).status_code == 401:
                return elapsed
            time.sleep(1)
    return None


def order_body(product_id: int, quantity: int, address: str = "1 Test Street, Testville") -> dict:
    return {"product_id": product_id, "quantity": quantity, "shipping_address": address}


def test_embedded_stack_flow_teardown_persistence_and_a_foreground_run_stopped_by_deleting_its_folder(
    embedded_env, embedded_stack, tmp_path
):
    """The detached stack: the flow, `status`, a second `up` refused, `logs` ending with `down`, nothing left. Then
    `ops dev up` in the foreground on the same folder: the data persisted; and deleting its state folder stops
    everything it started, Postgres included (this part was tests/cli/test_dev_lifecycle.py's
    test_foreground_run_stops_everything_postgres_included_when_its_state_folder_goes, on a fresh platform of its
    own; the same assertions, one platform fewer)."""
    env = embedded_env
    local_dir = Path(env["OPS_LOCAL_DIR"])
    gateway, admin_name, state, output = embedded_stack
    assert "seeded 4 demo products" in output
    assert httpx.get(f"{gateway}/products/1").json()["name"] == DEMO_PRODUCTS[0]["name"]
    assert (local_dir / "secrets.json").stat().st_mode & 0o777 == 0o600
    walked = walk_flow(gateway, admin_name, admin_password(local_dir))

    with ThreadPoolExecutor(max_workers=2) as pool:  # two reading checks side by side
        status, again = pool.map(lambda args: ops(["dev", *args], env), (["status"], ["up", "--detach"]))
    assert status.returncode == 0, status.stdout
    for name in [*(s.name for s in catalogue.SERVICES), "gateway", "redis", "postgres"]:
        assert re.search(rf"{name}\b.*\bready\b", status.stdout), status.stdout

    assert again.returncode == 1, again.stdout
    assert "the local platform is already running" in " ".join(again.stdout.split())
    assert "Traceback" not in again.stdout + again.stderr
    # A second stack on the same ports is refused naming the gateway's pid: tests/cli/test_dev_lifecycle.py.

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
        assert "demo data already present" in output and re.search(r"admin login: \S+ / \S+", output), output
        state = json.loads((local_dir / "run" / "state.json").read_text())
        gateway = state["processes"]["gateway"]["url"]
        assert gateway == f"http://127.0.0.1:{catalogue.GATEWAY_PORT + int(env['OPS_PORT_OFFSET'])}"
        check_persisted(gateway, walked)

        shutil.rmtree(local_dir)
        assert proc.wait(90) == 0, output_file.read_text()
        text = output_file.read_text()
        assert "disappeared; stopping everything" in text and "Traceback" not in text, text
        _check_nothing_left(env, state)
        assert LocalPlatform(LocalConfig(local_dir=local_dir))._find_own() == []
    finally:
        if proc.poll() is None:
            proc.kill()


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
            env=ops_env(env) | {"PYTHONFAULTHANDLER": "1"},  # SIGABRT: every thread's stack, into its output
            stdout=out,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            # Ctrl-C in a terminal reaches a process whose SIGINT is not ignored; a suite started in the background
            # (`ops test &`, nohup, some CI shells) ignores SIGINT, and Python keeps an inherited ignore.
            preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),
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
        assert _in_thread(_databases(data_servers.database_url, prefix)) == sorted(
            f"{prefix}{s.name}" for s in catalogue.SERVICES
        )
        # The followed logs show the order's requests, from the gateway and from the orders service.
        for service in ("gateway", "orders"):
            _wait_for(output_file, rf"^{service}\s.*path=/orders/{walked.order_id}/status", proc, timeout=10)

        proc.send_signal(signal.SIGINT)
        try:
            code = proc.wait(60)
        except subprocess.TimeoutExpired:
            proc.send_signal(signal.SIGABRT)
            proc.wait(10)
            raise AssertionError(f"still running 60 s after Ctrl-C:\n{output_file.read_text()}") from None
        assert code == 0, output_file.read_text()
        assert "stopped" in output_file.read_text() and "Traceback" not in output_file.read_text()
        _check_nothing_left(env, state)
    finally:
        if proc.poll() is None:
            proc.kill()
            ops(["dev", "down"], env)
