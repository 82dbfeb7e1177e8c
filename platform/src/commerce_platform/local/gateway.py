"""The local gateway: one port that routes the same public prefixes as the cluster's Ingress.

A small ASGI reverse proxy over one shared `httpx.AsyncClient`. Bodies stream both ways, the caller's X-Request-ID is
passed on (or one is made, so the gateway's log line and the service's share it), and a backend that is down or
slow becomes a JSON 502/504 instead of a hang or a traceback. With `OTEL_TRACES_EXPORTER` set (as `ops dev up`
does) it is the trace's edge too: a server span per request (continuing a caller's `traceparent`), `traceparent`
sent on to the service, and the trace id in its log line (service_kit.tracing, the services' own code).
"""

from __future__ import annotations

import json
import logging
import os
import sys
import time
from dataclasses import dataclass

import httpx
from pythonjsonlogger.json import JsonFormatter

from service_kit import tracing
from service_kit.logging import incoming_request_id

ROUTES_ENV = "GATEWAY_ROUTES"  # JSON: {"/users": "http://127.0.0.1:8001", ...}
TIMEOUT_ENV = "GATEWAY_TIMEOUT_SECONDS"
HEALTH_PATH = "/gateway/health"

# Hop-by-hop headers (RFC 9110 §7.6.1) belong to one connection and are never forwarded.
_HOP_BY_HOP = {
    b"connection",
    b"keep-alive",
    b"proxy-authenticate",
    b"proxy-authorization",
    b"te",
    b"trailer",
    b"transfer-encoding",
    b"upgrade",
    b"host",
}

logger = logging.getLogger("gateway")


@dataclass(frozen=True)
class Route:
    prefix: str
    upstream: str

    def matches(self, path: str) -> bool:
        return path == self.prefix or path.startswith(self.prefix.rstrip("/") + "/")


class Gateway:
    def __init__(
        self, routes: dict[str, str], timeout_seconds: float = 30.0, traces: tracing.Tracing | None = None
    ) -> None:
        self.traces = traces
        # Longest prefix first, so a more specific route wins.
        self.routes = sorted(
            (Route(p, u.rstrip("/")) for p, u in routes.items()), key=lambda r: -len(r.prefix)
        )
        self.timeout = httpx.Timeout(timeout_seconds, connect=min(5.0, timeout_seconds))
        self.client: httpx.AsyncClient | None = None

    def route_for(self, path: str) -> Route | None:
        return next((r for r in self.routes if r.matches(path)), None)

    async def __call__(self, scope, receive, send) -> None:
        if scope["type"] == "lifespan":
            await self._lifespan(receive, send)
        elif scope["type"] == "http":
            await self._http(scope, receive, send)

    async def _lifespan(self, receive, send) -> None:
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                transport = httpx.AsyncHTTPTransport(
                    limits=httpx.Limits(max_connections=200, max_keepalive_connections=50)
                )
                self.client = httpx.AsyncClient(
                    timeout=self.timeout,
                    follow_redirects=False,
                    transport=self.traces.transport(transport) if self.traces else transport,
                )
                await send({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
                if self.client is not None:
                    await self.client.aclose()
                if self.traces is not None:
                    self.traces.shutdown()
                await send({"type": "lifespan.shutdown.complete"})
                return

    async def _http(self, scope, receive, send) -> None:
        started = time.perf_counter()
        headers = scope.get("headers") or []
        request_id = incoming_request_id(dict(headers).get(b"x-request-id"))
        path = scope["path"]
        route = self.route_for(path)
        status = 500
        if tracing.enabled():
            tracing.name_server_span(scope["method"], route.prefix if route else "unmatched")
        try:
            if path == HEALTH_PATH:
                status = 200
                await _json(send, 200, {"status": "ok"}, request_id)
            elif route is None:
                status = 404
                await _json(send, 404, {"detail": f"no route for {path}"}, request_id)
            else:
                status = await self._proxy(scope, receive, send, route, request_id)
        finally:
            logger.info(
                "request",
                extra={
                    "request_id": request_id,
                    "method": scope["method"],
                    "path": path,
                    "status": status,
                    "upstream": route.upstream if route else None,
                    "duration_ms": round((time.perf_counter() - started) * 1000, 3),
                },
            )

    async def _proxy(self, scope, receive, send, route: Route, request_id: str) -> int:
        assert self.client is not None, "lifespan not started"
        url = route.upstream + scope.get("raw_path", scope["path"].encode()).decode("latin-1")
        if scope.get("query_string"):
            url += "?" + scope["query_string"].decode("latin-1")
        replaced = _HOP_BY_HOP | {
            b"x-request-id",
            b"x-forwarded-for",
            b"x-forwarded-proto",
            b"x-forwarded-host",
        }
        forward = [(k, v) for k, v in scope["headers"] if k.lower() not in replaced]
        incoming = dict((k.lower(), v) for k, v in scope["headers"])
        client_host = (scope.get("client") or ("", 0))[0].encode()
        # Append to a chain of proxies rather than hiding it, as an Ingress controller does.
        chain = (
            incoming[b"x-forwarded-for"] + b", " + client_host
            if b"x-forwarded-for" in incoming
            else client_host
        )
        forward += [
            (b"x-request-id", request_id.encode()),
            (b"x-forwarded-for", chain),
            (b"x-forwarded-proto", scope.get("scheme", "http").encode()),
        ]
        host = incoming.get(b"host")
        if host:
            forward.append((b"x-forwarded-host", host))
        has_body = any(k.lower() in (b"content-length", b"transfer-encoding") for k, _ in scope["headers"])
        request = self.client.build_request(
            scope["method"], url, headers=forward, content=_body(receive) if has_body else None
        )
        try:
            response = await self.client.send(request, stream=True)
        except httpx.TimeoutException:
            await _json(send, 504, {"detail": f"upstream {route.upstream} timed out"}, request_id)
            return 504
        except httpx.TransportError:
            await _json(send, 502, {"detail": f"upstream {route.upstream} unavailable"}, request_id)
            return 502
        try:
            out_headers = [(k, v) for k, v in response.headers.raw if k.lower() not in _HOP_BY_HOP]
            if "x-request-id" not in response.headers:
                out_headers.append((b"x-request-id", request_id.encode()))
            await send(
                {"type": "http.response.start", "status": response.status_code, "headers": out_headers}
            )
            try:
                async for chunk in response.aiter_raw():
                    await send({"type": "http.response.body", "body": chunk, "more_body": True})
            except httpx.TransportError:
                # Headers are already out; all we can do is end the body (the client sees a short response).
                logger.warning("upstream broke off mid-response", extra={"request_id": request_id})
            await send({"type": "http.response.body", "body": b"", "more_body": False})
        finally:
            await response.aclose()
        return response.status_code


async def _body(receive):
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            return
        if message.get("body"):
            yield message["body"]
        if not message.get("more_body", False):
            return


async def _json(send, status: int, payload: dict, request_id: str) -> None:
    body = json.dumps(payload).encode()
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [
                (b"content-type", b"application/json"),
                (b"content-length", str(len(body)).encode()),
                (b"x-request-id", request_id.encode()),
            ],
        }
    )
    await send({"type": "http.response.body", "body": body})


def configure_logging(level: str = "INFO") -> None:
    handler = logging.StreamHandler(sys.stdout)
    handler.setFormatter(
        JsonFormatter(
            "%(asctime)s %(levelname)s %(name)s %(message)s %(trace_id)s",
            rename_fields={"asctime": "timestamp", "levelname": "level", "name": "logger"},
            static_fields={"service": "gateway"},
        )
    )
    handler.addFilter(_trace_id)
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
    logging.getLogger("uvicorn.access").disabled = True
    logging.getLogger("httpx").setLevel(logging.WARNING)
    for name in ("uvicorn", "uvicorn.error"):
        logging.getLogger(name).handlers[:] = []
        logging.getLogger(name).propagate = True


def _trace_id(record: logging.LogRecord) -> bool:
    if not hasattr(record, "trace_id"):
        record.trace_id = tracing.current_trace_id()
    return True


def app_from_env() -> tracing.TracingMiddleware:
    """uvicorn factory: `uvicorn --factory commerce_platform.local.gateway:app_from_env`."""
    configure_logging(os.environ.get("LOG_LEVEL", "INFO"))
    routes = json.loads(os.environ[ROUTES_ENV])
    traces = tracing.Tracing(
        "gateway", os.environ.get("OTEL_TRACES_EXPORTER", "none"), os.environ.get("TRACES_FILE")
    )
    gateway = Gateway(routes, float(os.environ.get(TIMEOUT_ENV, "30")), traces)
    return tracing.TracingMiddleware(gateway)
