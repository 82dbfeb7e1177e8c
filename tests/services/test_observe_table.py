"""`ops dev top`'s numbers (commerce_ops.local.observe): the quantile of a real prometheus-client histogram,
and a row computed from two scrapes of the real inventory around real requests."""

from __future__ import annotations

import time

import httpx
import pytest
from prometheus_client import CollectorRegistry, Histogram, generate_latest

from commerce_ops.local import observe


def exposition(observations: list[float], route: str = "/products/{product_id}", status: str = "200") -> str:
    registry = CollectorRegistry()
    histogram = Histogram(
        observe.REQUESTS, "test", ("method", "route", "status"), buckets=(0.01, 0.1, 1.0), registry=registry
    )
    for seconds in observations:
        histogram.labels("GET", route, status).observe(seconds)
    return generate_latest(registry).decode()


def test_quantiles_interpolate_in_the_buckets_like_histogram_quantile():
    # 50 fast (≤10 ms), 50 slow (100 ms–1 s): the median sits at the top of the first bucket.
    sample = observe.parse(exposition([0.005] * 50 + [0.5] * 50))
    assert sample.requests == 100 and sample.errors == 0
    assert observe.quantile(0.5, sample.buckets) == pytest.approx(0.01)
    # rank 99 of 100: 49/50 of the way through the (0.1, 1] bucket.
    assert observe.quantile(0.99, sample.buckets) == pytest.approx(0.1 + 0.9 * 49 / 50)
    assert observe.quantile(0.5, {}) is None


def test_probes_are_left_out_and_5xx_counted():
    probes = observe.parse(exposition([0.001] * 10, route="/ready"))
    assert probes.requests == 0
    errors = observe.parse(exposition([0.2] * 3, status="503"))
    assert (errors.requests, errors.errors) == (3, 3)


def test_a_row_from_two_scrapes_of_the_running_inventory(services, admin_token):
    inventory = services.start("inventory")
    with httpx.Client(timeout=10) as http:
        before, started = observe.scrape(http, inventory.metrics_url), time.monotonic()
        for _ in range(20):
            assert http.get(f"{inventory.url}/products/999999999").status_code == 404
        after = observe.scrape(http, inventory.metrics_url)
        seconds = time.monotonic() - started
    row = observe.row("inventory", inventory.metrics_url, before, after, seconds)
    assert row.up and row.rps == pytest.approx(20 / seconds)
    assert row.p50_ms is not None and row.p99_ms >= row.p50_ms > 0
    assert row.errors_per_s == 0 and row.pool.endswith("/10")
    assert not observe.row("x", "http://127.0.0.1:1/metrics", None, None, 1.0).up
