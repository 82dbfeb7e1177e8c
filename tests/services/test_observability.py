"""Metrics (prometheus-client, on each service's METRICS_PORT, else on the service port) and traces (OpenTelemetry, W3C traceparent)
from the real services: the numbers move with real requests, and one order is one trace across the gateway and
all four services."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
import uuid
from pathlib import Path

import httpx
import pytest
from flow_support import create_product, order_body, start_all
from harness import REPO_ROOT, RunningService, auth, free_port
from prometheus_client.parser import text_string_to_metric_families

from commerce_ops.local.gateway import ROUTES_ENV
from commerce_ops.local.processes import die_with_parent
from commerce_platform import catalogue
from service_kit.serve import uvicorn_argv

pytestmark = pytest.mark.heavy(55)

PRODUCT_ROUTE = "/products/{product_id}"


def scrape(service: RunningService) -> dict[tuple[str, tuple], float]:
    """Every sample of the service's /metrics as {(name, sorted labels): value}."""
    response = httpx.get(service.metrics_url, timeout=10)
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("text/plain")
    samples = {}
    for family in text_string_to_metric_families(response.text):
        for sample in family.samples:
            samples[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
    return samples


def value(samples: dict, name: str, **labels: str) -> float:
    return samples.get((name, tuple(sorted(labels.items()))), 0.0)


@pytest.fixture(scope="module")
def stack(services):
    return start_all(services)


def test_requests_are_measured_by_route_template_and_status_never_the_raw_path(stack, admin_token):
    product = create_product(stack, admin_token, price="3.50", stock=5, name="metered")
    before = scrape(stack.inventory)
    for _ in range(2):
        assert httpx.get(f"{stack.inventory.url}/products/{product['id']}", timeout=10).status_code == 200
    assert httpx.get(f"{stack.inventory.url}/products/999999999", timeout=10).status_code == 404
    assert httpx.get(f"{stack.inventory.url}/no/such/path", timeout=10).status_code == 404
    after = scrape(stack.inventory)

    count = "http_server_request_duration_seconds_count"
    ok = {"method": "GET", "route": PRODUCT_ROUTE, "status": "200"}
    assert value(after, count, **ok) - value(before, count, **ok) == 2
    missing = {"method": "GET", "route": PRODUCT_ROUTE, "status": "404"}
    assert value(after, count, **missing) - value(before, count, **missing) == 1
    unmatched = {"method": "GET", "route": "unmatched", "status": "404"}
    assert value(after, count, **unmatched) - value(before, count, **unmatched) == 1
    buckets = [k for k in after if k[0] == "http_server_request_duration_seconds_bucket"]
    unknown = {dict(labels)["route"] for _, labels in buckets} - ({"unmatched"} | routes(stack))
    assert buckets and not unknown, unknown
    # The read after the first is served from Redis.
    hit = {"cache": "product", "result": "hit"}
    assert value(after, "cache_requests_total", **hit) - value(before, "cache_requests_total", **hit) >= 1
    assert ("http_server_requests_in_flight", ()) in after
    pool = {k: v for k, v in after.items() if k[0] == "db_pool_connections"}
    assert value(after, "db_pool_connections", state="max") == 10
    assert value(after, "db_pool_connections", state="open") >= 1, pool
    assert ("db_pool_waiting", ()) in after


def routes(stack) -> set[str]:
    """The inventory's own route templates (from its OpenAPI document)."""
    paths = httpx.get(f"{stack.inventory.url}/openapi.json", timeout=10).json()["paths"]
    return set(paths) | {"/health", "/ready", "/openapi.json", "/docs", "/docs/oauth2-redirect", "/redoc"}


def test_with_a_metrics_port_the_service_port_has_no_metrics(stack):
    """The cluster's case: /metrics on METRICS_PORT alone, which the NetworkPolicy opens to monitoring only."""
    for service in (stack.users, stack.inventory, stack.orders, stack.payments):
        assert httpx.get(f"{service.url}/metrics", timeout=10).status_code == 404
        assert scrape(service)  # but on the metrics port


def test_an_order_moves_the_saga_outgoing_call_payment_and_replay_counters(
    stack, admin_token, register_and_login
):
    account = register_and_login("metered")
    product = create_product(stack, admin_token, price="2.00", stock=10)
    orders_before, payments_before = scrape(stack.orders), scrape(stack.payments)
    key = uuid.uuid4().hex
    headers = auth(account.token) | {"Idempotency-Key": key}
    with httpx.Client(base_url=stack.orders.url, timeout=30) as orders:
        first = orders.post("/orders/", json=order_body(product["id"]), headers=headers)
        assert (first.status_code, first.json()["status"]) == (201, "completed"), first.text
        again = orders.post("/orders/", json=order_body(product["id"]), headers=headers)
        assert again.status_code == 200, again.text  # the replay
    orders_after, payments_after = scrape(stack.orders), scrape(stack.payments)

    def delta(after, before, name, **labels):
        return value(after, name, **labels) - value(before, name, **labels)

    assert delta(orders_after, orders_before, "orders_saga_outcomes_total", outcome="completed") == 1
    assert delta(orders_after, orders_before, "idempotent_replays_total", resource="order") == 1
    for target, method in (("users", "GET"), ("inventory", "POST"), ("payments", "POST")):
        labels = {"target": target, "method": method}
        calls = sum(
            v - value(orders_before, name, **dict(lbl))
            for (name, lbl), v in orders_after.items()
            if name == "http_client_request_duration_seconds_count" and labels.items() <= dict(lbl).items()
        )
        assert calls >= 1, (target, method)
    assert delta(payments_after, payments_before, "payments_authorizations_total", result="authorized") == 1


def test_refused_logins_are_counted_by_reason(stack):
    before = scrape(stack.users)
    response = httpx.post(
        f"{stack.users.url}/token", data={"username": f"nobody-{uuid.uuid4().hex[:8]}", "password": "x"}
    )
    assert response.status_code == 401
    after = scrape(stack.users)
    name, reason = "users_login_failures_total", {"reason": "invalid_credentials"}
    assert value(after, name, **reason) - value(before, name, **reason) == 1


def test_metrics_off_serves_nothing_and_the_service_still_answers(services):
    instance = services.start_extra("payments", env={"METRICS_ENABLED": "false"}, wait_ready=True)
    try:
        assert httpx.get(f"{instance.url}/health", timeout=10).status_code == 200
        with pytest.raises(httpx.ConnectError):
            httpx.get(instance.metrics_url, timeout=5)
        assert httpx.get(f"{instance.url}/metrics", timeout=10).status_code == 404
    finally:
        services.stop(instance)


def test_without_a_metrics_port_metrics_are_on_the_service_port(services):
    """The laptop's case (`ops dev up` sets no METRICS_PORT): `curl :8004/metrics`."""
    instance = services.start_extra("payments", env={"METRICS_PORT": None}, wait_ready=True)
    try:
        assert instance.metrics_url == f"{instance.url}/metrics"
        assert httpx.get(f"{instance.url}/health", timeout=10).status_code == 200
        samples = scrape(instance)
        assert (
            value(
                samples,
                "http_server_request_duration_seconds_count",
                method="GET",
                route="/health",
                status="200",
            )
            >= 1
        )
    finally:
        services.stop(instance)


def test_a_taken_metrics_port_is_one_line_and_exit_78(services, stack):
    taken = stack.payments.metrics_port
    with pytest.raises(RuntimeError, match=r"code 78") as failed:
        services.start_extra("payments", env={"METRICS_PORT": str(taken)})
    assert f"payments: METRICS_PORT {taken}: Address already in use" in str(failed.value)
    assert "Traceback" not in str(failed.value)


# --- traces --------------------------------------------------------------------------------------------------
def _traced_env(folder: Path, name: str) -> dict[str, str]:
    return {"OTEL_TRACES_EXPORTER": "console", "TRACES_FILE": str(folder / f"{name}.spans.jsonl")}


def _start_gateway(folder: Path, routes: dict[str, str]) -> tuple[subprocess.Popen, str, Path]:
    port = free_port()
    log = folder / "gateway.log"
    env = {**os.environ, ROUTES_ENV: json.dumps(routes), **_traced_env(folder, "gateway")}
    with open(log, "wb") as out:
        process = subprocess.Popen(
            uvicorn_argv(
                "commerce_ops.local.gateway:app_from_env",
                port,
                host="127.0.0.1",
                graceful_shutdown=None,
                factory=True,
                access_log=False,
                python=sys.executable,
            ),
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
            cwd=REPO_ROOT,
            preexec_fn=die_with_parent,
        )
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 60
    while True:
        try:
            if httpx.get(url + "/gateway/health", timeout=1).status_code == 200:
                return process, url, log
        except httpx.HTTPError:
            pass
        assert process.poll() is None and time.monotonic() < deadline, log.read_text()
        time.sleep(0.1)


def _json_lines(path: Path) -> list[dict]:
    lines = []
    for raw in path.read_text(errors="replace").splitlines():
        try:
            lines.append(json.loads(raw))
        except ValueError:
            continue
    return lines


def test_one_order_is_one_trace_in_the_logs_of_the_gateway_and_all_four_services(
    services, admin_token, register_and_login, tmp_path
):
    def traced(name: str, launched: dict[str, RunningService]) -> dict[str, str]:
        """Each traced instance calls the traced instances launched before it (users first, orders last)."""
        calls = catalogue.get(name).calls
        wiring = {f"{callee.upper()}_URL": launched[callee].url for callee in calls if callee in launched}
        if "users" in launched:
            wiring["JWT_JWKS_URL"] = f"{launched['users'].url}/.well-known/jwks.json"
        return _traced_env(tmp_path, name) | wiring

    traced_stack = services.start_extras(
        ["users", "inventory", "payments", "orders"], traced, wait_ready=True
    )
    users, inventory, payments, orders = (
        traced_stack[name] for name in ("users", "inventory", "payments", "orders")
    )
    gateway, gateway_url, gateway_log = _start_gateway(
        tmp_path, {"/orders": orders.url, "/products": inventory.url, "/users": users.url}
    )
    try:
        account = register_and_login("traced")
        product = httpx.post(
            f"{inventory.url}/products/",
            json={"name": "traced", "price": "1.25", "stock": 3},
            headers=auth(admin_token),
            timeout=10,
        ).json()
        request_id = f"trace-{uuid.uuid4().hex[:12]}"
        placed = httpx.post(
            f"{gateway_url}/orders/",
            json=order_body(product["id"]),
            headers=auth(account.token) | {"X-Request-ID": request_id},
            timeout=30,
        )
        assert (placed.status_code, placed.json()["status"]) == (201, "completed"), placed.text

        def lines_of(instance: RunningService) -> list[dict]:
            return [line for line in instance.log_lines() if line.get("request_id") == request_id]

        for instance in (users, inventory, payments, orders):
            instance.wait_for_log(
                lambda line: line.get("request_id") == request_id and line["message"] == "request"
            )
        traced = {s.name: lines_of(s) for s in (users, inventory, payments, orders)}
        deadline = time.monotonic() + 10
        while not [r for r in _json_lines(gateway_log) if r.get("request_id") == request_id]:
            assert time.monotonic() < deadline, gateway_log.read_text()
            time.sleep(0.1)
        traced["gateway"] = [r for r in _json_lines(gateway_log) if r.get("request_id") == request_id]

        trace_ids = {name: {line.get("trace_id") for line in lines} for name, lines in traced.items()}
        trace_id = next(iter(set().union(*trace_ids.values())))
        assert len(set().union(*trace_ids.values())) == 1, trace_ids
        assert trace_id and len(trace_id) == 32 and trace_id != "0" * 32

        # The exporters' spans: the same trace, with server spans by route template, client calls and SQL.
        spans = {
            name: [
                s
                for s in _json_lines(tmp_path / f"{name}.spans.jsonl")
                if s["context"]["trace_id"] == f"0x{trace_id}"
            ]
            for name in traced
        }
        for name, found in spans.items():
            assert any(s["kind"] == "SpanKind.SERVER" for s in found), (name, found)
        names = {s["name"] for found in spans.values() for s in found}
        assert "POST /orders/" in names, names
        assert any(s["kind"] == "SpanKind.CLIENT" for s in spans["orders"])
        assert any(
            "db.statement" in s["attributes"] or "db.query.text" in s["attributes"] for s in spans["orders"]
        )
    finally:
        gateway.terminate()
        gateway.wait(20)
        for instance in (orders, payments, inventory, users):
            services.stop(instance)
