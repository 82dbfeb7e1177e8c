"""Prometheus metrics of every service (prometheus-client).

Where `/metrics` is served is one setting, `METRICS_PORT`:
- set (the cluster): prometheus-client's own HTTP server on that port, and the service port answers `/metrics`
  with 404. The cluster's NetworkPolicy admits the monitoring namespace to the metrics port alone, so scraping
  opens no path to the API and the API no path to the metrics;
- unset (a laptop, `ops dev up`): `/metrics` on the service's own port (`curl localhost:8001/metrics`).
Neither the Ingress nor the gateway routes `/metrics` in either case: they route the public prefixes only.

Cardinality is bounded by construction: requests are labelled by route template (`/products/{product_id}`, or
`unmatched` for a path no route knows), method (the standard ones, else `OTHER`) and status code; outgoing calls
by the configured target name (`users`, `inventory`, ..., else `other`); the domain counters by fixed outcomes.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from urllib.parse import urlsplit

import asyncpg
from fastapi import APIRouter, HTTPException, Request, Response
from prometheus_client import (
    CONTENT_TYPE_LATEST,
    REGISTRY,
    Counter,
    Gauge,
    Histogram,
    disable_created_metrics,
    generate_latest,
    start_http_server,
)
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector
from pydantic import SecretStr

from service_kit.settings import ServiceSettings

# Latency buckets (seconds): a cached read sits in the first few, a saga with three calls in the middle ones.
LATENCY_BUCKETS = (0.002, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)
METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})
UNMATCHED_ROUTE = "unmatched"
OTHER_TARGET = "other"

# No `*_created` series beside every counter and histogram: Prometheus does not need them, they double the output.
disable_created_metrics()

REQUEST_DURATION = Histogram(
    "http_server_request_duration_seconds",
    "Time to answer an incoming request, by method, route template and status.",
    ("method", "route", "status"),
    buckets=LATENCY_BUCKETS,
)
IN_FLIGHT = Gauge("http_server_requests_in_flight", "Incoming requests being answered now.")
CLIENT_DURATION = Histogram(
    "http_client_request_duration_seconds",
    "Time of an outgoing call to another service, by target, method and status (`error`: no answer).",
    ("target", "method", "status"),
    buckets=LATENCY_BUCKETS,
)
CLIENT_ERRORS = Counter(
    "http_client_errors",
    "Outgoing calls that got no answer, by target and error (connect, timeout, protocol, network).",
    ("target", "error"),
)
CACHE_REQUESTS = Counter(
    "cache_requests", "Cache reads by cache and result (hit, miss, error).", ("cache", "result")
)
SAGA_OUTCOMES = Counter(
    "orders_saga_outcomes",
    "Order sagas that ended, by outcome (completed, failed, cancelled, compensated).",
    ("outcome",),
)
IDEMPOTENT_REPLAYS = Counter(
    "idempotent_replays",
    "Requests answered from an earlier request with the same Idempotency-Key, by resource.",
    ("resource",),
)
PAYMENT_AUTHORIZATIONS = Counter(
    "payments_authorizations", "Payment authorizations by result (authorized, declined).", ("result",)
)
LOGIN_FAILURES = Counter(
    "users_login_failures",
    "Refused logins by reason (invalid_credentials, inactive, throttled).",
    ("reason",),
)

_enabled = True  # METRICS_ENABLED, set when the app starts (one app per process)


def enabled() -> bool:
    return _enabled


def route_template(scope) -> str:
    """The template of the route that answered (set by FastAPI's router on the scope), never the raw path."""
    route = scope.get("route")
    return getattr(route, "path", None) or UNMATCHED_ROUTE


# The histogram's children by (method, route template, status): a bounded set (templates, not paths), looked up
# once each instead of through `labels()` (label checks and a lock) on every request.
_DURATION_CHILDREN: dict[tuple[str, str, int], Histogram] = {}


def observe_request(scope, status: int, started: float) -> None:
    method = scope["method"]
    key = (method if method in METHODS else "OTHER", route_template(scope), status)
    child = _DURATION_CHILDREN.get(key)
    if child is None:
        child = _DURATION_CHILDREN[key] = REQUEST_DURATION.labels(key[0], key[1], str(status))
    child.observe(time.perf_counter() - started)


def outgoing_targets(settings: ServiceSettings) -> dict[str, str]:
    """`host:port` → target name, from the service's `<name>_URL` settings (e.g. ORDERS' USERS_URL → `users`).

    The JWKS and service-token URLs name the token issuer's host; they only get a name of their own (`jwks`,
    `service_token`) when no other setting (e.g. USERS_URL) does.
    """
    targets: dict[str, str] = {}
    issuer_urls = ("jwt_jwks_url", "service_token_url")
    fields = sorted(type(settings).model_fields, key=lambda name: name in issuer_urls)
    for name in fields:
        value = getattr(settings, name)
        if not name.endswith("_url") or value is None or isinstance(value, SecretStr):
            continue
        parts = urlsplit(str(value))
        if parts.scheme in ("http", "https") and parts.netloc:
            target = "jwks" if name == "jwt_jwks_url" else name.removesuffix("_url")
            targets.setdefault(parts.netloc, target)
    return targets


class PoolCollector(Collector):
    """asyncpg pool gauges, read at scrape time: connections open, in use, idle, the maximum, and waiters."""

    def __init__(self, pool: asyncpg.Pool) -> None:
        self.pool = pool

    def collect(self) -> Iterator[GaugeMetricFamily]:
        pool = self.pool
        size, idle = pool.get_size(), pool.get_idle_size()
        connections = GaugeMetricFamily(
            "db_pool_connections", "asyncpg pool connections by state.", labels=("state",)
        )
        connections.add_metric(("open",), size)
        connections.add_metric(("in_use",), size - idle)
        connections.add_metric(("idle",), idle)
        connections.add_metric(("max",), pool.get_max_size())
        yield connections
        # asyncpg has no public count of tasks waiting in acquire(); its queue's waiters are that count.
        waiters = getattr(getattr(pool, "_queue", None), "_getters", ())
        yield GaugeMetricFamily(
            "db_pool_waiting", "Tasks waiting for a pooled connection.", value=len(waiters or ())
        )


class MetricsServer:
    """Where this app's `/metrics` is served (its own port, or the app's `/metrics` route), plus the pool
    collector, for one app's lifetime."""

    def __init__(self, settings: ServiceSettings) -> None:
        global _enabled
        _enabled = settings.metrics_enabled
        self._collector: PoolCollector | None = None
        self._server = None
        self.url: str | None = None
        self.on_service_port = settings.metrics_enabled and settings.metrics_port is None
        if self.on_service_port:
            self.url = "/metrics (on the service port)"
        elif settings.metrics_enabled:
            self._server, _thread = start_http_server(settings.metrics_port, addr=settings.metrics_host)
            self.url = f"http://{settings.metrics_host}:{settings.metrics_port}/metrics"

    def watch_pool(self, pool: asyncpg.Pool) -> None:
        if _enabled:
            self._collector = PoolCollector(pool)
            REGISTRY.register(self._collector)

    def close(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
        if self._collector is not None:
            REGISTRY.unregister(self._collector)


router = APIRouter(tags=["metrics"])


@router.get("/metrics", include_in_schema=False)
def metrics(request: Request) -> Response:
    """Prometheus text, when this app serves its metrics on the service port (no `METRICS_PORT`)."""
    if not request.app.state.metrics.on_service_port:
        raise HTTPException(status_code=404, detail="Not Found")
    return Response(generate_latest(REGISTRY), media_type=CONTENT_TYPE_LATEST)
