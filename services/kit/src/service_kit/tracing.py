"""OpenTelemetry traces: W3C `traceparent` in and out, spans for incoming requests, outgoing calls and SQL.

Configured by the standard variables: `OTEL_TRACES_EXPORTER` (`none`, the default and prod's; `otlp`, whose
endpoint and headers the OTLP exporter reads from `OTEL_EXPORTER_OTLP_*` itself; `console`, one JSON span per
line to `TRACES_FILE` or stdout, what `ops dev up` uses). With `none` nothing is instrumented at all, so tracing
costs nothing where it is off. The pieces are the OpenTelemetry SDK's and instrumentations':
`opentelemetry-instrumentation-asgi` for the server span (continuing an incoming `traceparent`),
`opentelemetry-instrumentation-httpx`'s transport wrapper around the kit's aiohttp-backed transport (it injects
`traceparent` into each outgoing request), `opentelemetry-instrumentation-asyncpg` for one span per statement.
Those, the SDK and the propagators are imported only when tracing is on: with `none` a process imports just
OpenTelemetry's API (the SDK's tracing, resources and the ASGI instrumentation cost ~0.1 s of CPU at import).
"""

from __future__ import annotations

import logging
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from typing import IO, TYPE_CHECKING

from opentelemetry import trace

if TYPE_CHECKING:
    import httpx
    from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
    from opentelemetry.sdk.trace.export import SpanExporter

EXPORTERS = ("none", "console", "otlp")

_provider: TracerProvider | None = None


def enabled() -> bool:
    return _provider is not None


def _one_line(span: ReadableSpan) -> str:
    return span.to_json(indent=None) + "\n"


def _exporter(kind: str, traces_file: str | None) -> tuple[SpanExporter, IO[str] | None]:
    if kind not in EXPORTERS:
        raise ValueError(f"OTEL_TRACES_EXPORTER={kind!r}: allowed: {', '.join(EXPORTERS)}")
    if kind == "otlp":
        from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter

        return OTLPSpanExporter(), None
    from opentelemetry.sdk.trace.export import ConsoleSpanExporter

    out = open(traces_file, "a", buffering=1) if traces_file else None  # noqa: SIM115 (closed in shutdown)
    return ConsoleSpanExporter(out=out or sys.stdout, formatter=_one_line), out


class Tracing:
    """The process's tracer provider for one app's lifetime (none when the exporter is `none`)."""

    def __init__(
        self, service: str, exporter: str, traces_file: str | None = None, environment: str = "local"
    ) -> None:
        global _provider
        self._file: IO[str] | None = None
        self.provider: TracerProvider | None = None
        if exporter == "none":
            return
        from opentelemetry.sdk.resources import Resource
        from opentelemetry.sdk.trace import TracerProvider
        from opentelemetry.sdk.trace.export import BatchSpanProcessor, SimpleSpanProcessor

        resource = Resource.create({"service.name": service, "deployment.environment.name": environment})
        provider = TracerProvider(resource=resource)
        span_exporter, self._file = _exporter(exporter, traces_file)
        # Locally every span is written as it ends (a trace can be read at once); OTLP sends in batches.
        processor = BatchSpanProcessor if exporter == "otlp" else SimpleSpanProcessor
        provider.add_span_processor(processor(span_exporter))
        self.provider = provider
        _provider = provider

    def tracer(self, name: str) -> trace.Tracer:
        assert self.provider is not None
        return self.provider.get_tracer(name)

    def instrument_asyncpg(self) -> None:
        if self.provider is not None:
            from opentelemetry.instrumentation.asyncpg import AsyncPGInstrumentor

            AsyncPGInstrumentor().instrument(tracer_provider=self.provider)

    def transport(self, transport: httpx.AsyncBaseTransport) -> httpx.AsyncBaseTransport:
        """The given transport, wrapped so each call is a client span that sends `traceparent`."""
        if self.provider is None:
            return transport
        from opentelemetry.instrumentation.httpx import AsyncOpenTelemetryTransport

        return AsyncOpenTelemetryTransport(transport, tracer_provider=self.provider)

    def shutdown(self) -> None:
        global _provider
        if self.provider is None:
            return
        if _provider is self.provider:
            _provider = None
        self.provider.shutdown()
        if self._file is not None:
            self._file.close()
        try:
            from opentelemetry.instrumentation.asyncpg import AsyncPGInstrumentor

            AsyncPGInstrumentor().uninstrument()
        except Exception:  # never instrumented, or already undone
            logging.getLogger("service.tracing").debug("asyncpg instrumentation not undone")


def _span_details(scope) -> tuple[str, dict]:
    # The route is not known yet; the server span is renamed to "<method> <route template>" once it is.
    return scope.get("method", "HTTP"), {}


class TracingMiddleware:
    """Pure ASGI: with tracing on, OpenTelemetry's ASGI middleware (server span, incoming `traceparent`);
    with it off, a direct call. Decided per request, because the exporter is read when the app starts."""

    def __init__(self, app) -> None:
        self.app = app
        self._traced = None
        self._for: TracerProvider | None = None

    async def __call__(self, scope, receive, send) -> None:
        provider = _provider
        if provider is None or scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        if self._for is not provider:
            from opentelemetry.instrumentation.asgi import OpenTelemetryMiddleware

            self._traced = OpenTelemetryMiddleware(
                self.app,
                default_span_details=_span_details,
                tracer_provider=provider,
                exclude_spans=["receive", "send"],
            )
            self._for = provider
        await self._traced(scope, receive, send)


@contextmanager
def client_span(method: str, url: str, headers: dict[str, str]) -> Iterator[trace.Span]:
    """A client span around an outgoing call made without httpx (service_kit.http.send, the gateway), with
    `traceparent` put into `headers`; errors are recorded on the span. Call only with tracing on."""
    assert _provider is not None
    from opentelemetry import propagate

    tracer = _provider.get_tracer("service_kit.http")
    with tracer.start_as_current_span(
        method,
        kind=trace.SpanKind.CLIENT,
        attributes={"http.request.method": method, "url.full": url},
    ) as span:
        propagate.inject(headers)
        yield span


def name_server_span(method: str, route: str) -> None:
    """Give the current server span its route template (called once the router has matched)."""
    span = trace.get_current_span()
    if span.is_recording():
        span.update_name(f"{method} {route}")
        span.set_attribute("http.route", route)


def current_trace_id() -> str | None:
    context = trace.get_current_span().get_span_context()
    return format(context.trace_id, "032x") if context.is_valid else None
