"""What `ops dev top` and `ops dev trace` read: the services' own /metrics, and the spans the local exporters wrote.

`top`: two scrapes of each service's /metrics (prometheus-client's text parser), turned into a rate table: requests
per second, p50/p99 latency (interpolated in the histogram's buckets as Prometheus' histogram_quantile does), 5xx
per second, requests in flight and database pool use. Health and readiness probes are left out of the numbers.

`trace`: the request id → the trace id(s) in the services' and the gateway's JSON log lines → every span of that
trace in `<local dir>/run/traces/*.jsonl`, as a tree in time order.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

import httpx
from prometheus_client.parser import text_string_to_metric_families

from commerce_platform import catalogue

REQUESTS = "http_server_request_duration_seconds"
PROBE_ROUTES = frozenset({catalogue.LIVENESS_PATH, catalogue.READINESS_PATH})


@dataclass
class Sample:
    """One scrape of one service, reduced to what the table shows."""

    requests: float = 0.0
    errors: float = 0.0  # 5xx
    buckets: dict[float, float] = field(default_factory=dict)  # upper bound → cumulative count
    in_flight: float = 0.0
    pool_in_use: float = 0.0
    pool_max: float = 0.0


def parse(text: str) -> Sample:
    sample = Sample()
    for family in text_string_to_metric_families(text):
        for s in family.samples:
            labels = s.labels
            if s.name.startswith(REQUESTS) and labels.get("route") in PROBE_ROUTES:
                continue
            if s.name == f"{REQUESTS}_count":
                sample.requests += s.value
                if labels.get("status", "").startswith("5"):
                    sample.errors += s.value
            elif s.name == f"{REQUESTS}_bucket":
                bound = float(labels["le"])
                sample.buckets[bound] = sample.buckets.get(bound, 0.0) + s.value
            elif s.name == "http_server_requests_in_flight":
                sample.in_flight = s.value
            elif s.name == "db_pool_connections" and labels.get("state") == "in_use":
                sample.pool_in_use = s.value
            elif s.name == "db_pool_connections" and labels.get("state") == "max":
                sample.pool_max = s.value
    return sample


def quantile(q: float, buckets: dict[float, float]) -> float | None:
    """Prometheus' histogram_quantile over cumulative buckets (None without observations)."""
    bounds = sorted(buckets)
    if not bounds or buckets[bounds[-1]] <= 0:
        return None
    total = buckets[bounds[-1]]
    rank = q * total
    lower, below = 0.0, 0.0
    for bound in bounds:
        count = buckets[bound]
        if count >= rank:
            if math.isinf(bound):
                return lower  # in the +Inf bucket: the highest finite bound is all that is known
            inside = count - below
            return lower + (bound - lower) * ((rank - below) / inside if inside else 0.0)
        lower, below = bound, count
    return lower


@dataclass(frozen=True)
class Row:
    service: str
    url: str
    up: bool
    rps: float = 0.0
    p50_ms: float | None = None
    p99_ms: float | None = None
    errors_per_s: float = 0.0
    in_flight: float = 0.0
    pool: str = "-"


def row(service: str, url: str, before: Sample | None, after: Sample | None, seconds: float) -> Row:
    if before is None or after is None:
        return Row(service, url, up=False)
    delta = {b: after.buckets.get(b, 0.0) - before.buckets.get(b, 0.0) for b in after.buckets}
    p50, p99 = quantile(0.5, delta), quantile(0.99, delta)
    return Row(
        service,
        url,
        up=True,
        rps=max(0.0, after.requests - before.requests) / seconds,
        p50_ms=None if p50 is None else p50 * 1000,
        p99_ms=None if p99 is None else p99 * 1000,
        errors_per_s=max(0.0, after.errors - before.errors) / seconds,
        in_flight=after.in_flight,
        pool=f"{after.pool_in_use:.0f}/{after.pool_max:.0f}",
    )


def scrape(http: httpx.Client, url: str) -> Sample | None:
    try:
        response = http.get(url)
    except httpx.HTTPError:
        return None
    return parse(response.text) if response.status_code == 200 else None


# --- traces --------------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Span:
    service: str
    name: str
    kind: str
    span_id: str
    parent_id: str | None
    start: datetime
    end: datetime
    attributes: dict

    @property
    def duration_ms(self) -> float:
        return (self.end - self.start).total_seconds() * 1000

    @property
    def label(self) -> str:
        """The span's name, with the URL an outgoing call went to (its name is only the method)."""
        url = self.attributes.get("url.full") or self.attributes.get("http.url")
        return f"{self.name} {url}" if self.kind == "CLIENT" and url else self.name


def _json_lines(path: Path):
    try:
        text = path.read_text(errors="replace")
    except FileNotFoundError:
        return
    for line in text.splitlines():
        try:
            record = json.loads(line)
        except ValueError:
            continue
        if isinstance(record, dict):
            yield record


def trace_ids_for(request_id: str, log_files: list[Path]) -> list[str]:
    """The trace ids logged beside `request_id`, in the order first seen."""
    found: list[str] = []
    for path in log_files:
        for record in _json_lines(path):
            trace_id = record.get("trace_id")
            if record.get("request_id") == request_id and trace_id and trace_id not in found:
                found.append(trace_id)
    return found


def spans_of(trace_id: str, span_files: list[Path]) -> list[Span]:
    spans = []
    for path in span_files:
        for record in _json_lines(path):
            context = record.get("context") or {}
            if context.get("trace_id") != f"0x{trace_id}":
                continue
            resource = (record.get("resource") or {}).get("attributes") or {}
            spans.append(
                Span(
                    service=resource.get("service.name", path.stem),
                    name=record.get("name", "?"),
                    kind=str(record.get("kind", "")).removeprefix("SpanKind."),
                    span_id=context.get("span_id", ""),
                    parent_id=record.get("parent_id"),
                    start=datetime.fromisoformat(record["start_time"]),
                    end=datetime.fromisoformat(record["end_time"]),
                    attributes=record.get("attributes") or {},
                )
            )
    return sorted(spans, key=lambda s: s.start)


def tree(spans: list[Span]) -> list[tuple[int, Span]]:
    """(depth, span) in start order, each span under its parent (a span whose parent is missing is a root)."""
    ids = {s.span_id for s in spans}
    children: dict[str | None, list[Span]] = {}
    for span in spans:
        parent = span.parent_id if span.parent_id in ids else None
        children.setdefault(parent, []).append(span)
    ordered: list[tuple[int, Span]] = []

    def walk(parent: str | None, depth: int) -> None:
        for span in children.get(parent, []):
            ordered.append((depth, span))
            walk(span.span_id, depth + 1)

    walk(None, 0)
    return ordered
