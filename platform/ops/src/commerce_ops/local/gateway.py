"""The local gateway: one port that routes the same public prefixes as the cluster's Ingress.

A small ASGI reverse proxy with one aiohttp `ClientSession` (and so one connection pool, of
`per_upstream_connections`) per upstream: a slow or stuck service can only use up its own pool. aiohttp, as the
services' own outgoing calls (service_kit.http): httpx's pool (httpcore) cost the gateway 2.3 ms of CPU per order
at 32 connections, about twice aiohttp's for the same proxying. The caller's X-Request-ID is passed on (or one
is made, so the gateway's log line and the service's share it), and a backend that is down or slow becomes a JSON
502/504 instead of a hang or a traceback.

Hardened as an edge must be:
- the path is normalised before routing (percent-decoded by the server, then dot segments and empty segments
  removed, RFC 3986 §5.2.4) and the normalised path is what is forwarded, so what is routed is what the service
  sees: `/products/../internal/reservations` is `/internal/reservations`, under no public prefix, so 404;
- request bodies are read whole before an upstream connection is taken, each read within `body_timeout_seconds`
  (408 otherwise) and at most `max_body_bytes` (413), so slow or huge uploads hold no upstream connection;
- an idempotent request that meets a connection the service had just closed (stale keep-alive) is sent again once;
- a `Location` pointing at an upstream is rewritten to a path on the gateway; the upstream's `date` and `server`
  give way to the gateway's own (one of each); `Authorization: Bearer ` with no token is answered 401 here;
- a caller's own `X-Forwarded-For` is dropped: the one entry forwarded is the peer the gateway saw;
- `/docs` is one Swagger UI page for the whole public API (`/openapi.json`: the services' public operations
  merged), its assets served from the fastapi-offline wheel, so it works without internet. With `OTEL_TRACES_EXPORTER` set (as `ops dev up`
does) it is the trace's edge too: a server span per request (continuing a caller's `traceparent`), a client
span per upstream call with `traceparent` sent on to the service, and the trace id in its log line
(service_kit.tracing, the services' own code).
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import quote

import aiohttp
import fastapi_offline
from fastapi.openapi.docs import get_swagger_ui_html
from pythonjsonlogger.json import JsonFormatter
from yarl import URL

from commerce_ops.local.gateway_env import HEALTH_PATH, ROUTES_ENV, TIMEOUT_ENV
from service_kit import tracing
from service_kit.logging import incoming_request_id

DOCS_PATH = "/docs"
OPENAPI_PATH = "/openapi.json"
_ASSETS_PATH = "/docs/assets/"
_ASSETS = {
    "swagger-ui-bundle.js": "application/javascript",
    "swagger-ui.css": "text/css",
    "favicon.png": "image/png",
}
_ASSET_DIR = Path(fastapi_offline.__file__).parent / "static"
MAX_BODY_BYTES = 1024 * 1024  # as the services' own limit (service_kit.settings MAX_BODY_BYTES)
BODY_TIMEOUT_SECONDS = 10.0  # between two chunks of a request body
PER_UPSTREAM_CONNECTIONS = 100
KEEPALIVE_SECONDS = (
    4.0  # below uvicorn's own keep-alive timeout (5 s): the gateway drops an idle connection first
)
# Safe to send twice (RFC 9110 §9.2.2): a stale keep-alive connection is retried for these only.
_IDEMPOTENT = {"GET", "HEAD", "OPTIONS", "PUT", "DELETE"}
# The gateway's own server adds these; the upstream's copies would make two of each.
_OWN_HEADERS = {b"date", b"server"}
# Characters left as they are when the normalised path is encoded again for the upstream.
_PATH_SAFE = "/:@!$&'()*+,;=-._~"

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


def normalise_path(path: str) -> str | None:
    """The decoded path without dot segments or empty segments; None when `..` would climb above the root."""
    segments: list[str] = []
    for segment in path.split("/"):
        if segment in ("", "."):
            continue
        if segment == "..":
            if not segments:
                return None
            segments.pop()
            continue
        segments.append(segment)
    normalised = "/" + "/".join(segments)
    trailing = path.endswith(("/", "/.", "/.."))
    return normalised + "/" if trailing and segments else normalised


class _Refused(Exception):
    def __init__(self, status: int, detail: str) -> None:
        self.status = status
        self.detail = detail


class Gateway:
    def __init__(
        self,
        routes: dict[str, str],
        timeout_seconds: float = 30.0,
        traces: tracing.Tracing | None = None,
        *,
        max_body_bytes: int = MAX_BODY_BYTES,
        body_timeout_seconds: float = BODY_TIMEOUT_SECONDS,
        per_upstream_connections: int = PER_UPSTREAM_CONNECTIONS,
    ) -> None:
        self.traces = traces
        # Longest prefix first, so a more specific route wins.
        self.routes = sorted(
            (Route(p, u.rstrip("/")) for p, u in routes.items()), key=lambda r: -len(r.prefix)
        )
        # Waiting for a pooled connection and opening one (`connect`) within the timeout, opening one within 5 s;
        # the upstream may then take `timeout_seconds` between two reads of its answer.
        self.timeout = aiohttp.ClientTimeout(
            total=None,
            connect=timeout_seconds,
            sock_connect=min(5.0, timeout_seconds),
            sock_read=timeout_seconds,
        )
        self.max_body_bytes = max_body_bytes
        self.body_timeout = body_timeout_seconds
        self.per_upstream_connections = per_upstream_connections
        self.sessions: dict[str, aiohttp.ClientSession] = {}
        self._in_flight: dict[str, int] = {}  # per upstream: requests holding or waiting for a connection
        self._openapi: bytes | None = None

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
                for upstream in {r.upstream for r in self.routes}:
                    self.sessions[upstream] = aiohttp.ClientSession(
                        connector=aiohttp.TCPConnector(
                            limit=self.per_upstream_connections, keepalive_timeout=KEEPALIVE_SECONDS
                        ),
                        timeout=self.timeout,
                        # The caller's headers go as they came: aiohttp adds none of its own defaults, decodes
                        # no answer and keeps no cookies.
                        skip_auto_headers=("User-Agent", "Accept", "Accept-Encoding", "Content-Type"),
                        auto_decompress=False,
                        cookie_jar=aiohttp.DummyCookieJar(),
                    )
                    self._in_flight[upstream] = 0
                await send({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
                for session in self.sessions.values():
                    await session.close()
                if self.traces is not None:
                    self.traces.shutdown()
                await send({"type": "lifespan.shutdown.complete"})
                return

    async def _http(self, scope, receive, send) -> None:
        started = time.perf_counter()
        headers = scope.get("headers") or []
        request_id = incoming_request_id(dict(headers).get(b"x-request-id"))
        path = scope["path"]
        normalised = normalise_path(path)
        route = self.route_for(normalised) if normalised is not None else None
        status = 500
        if tracing.enabled():
            tracing.name_server_span(scope["method"], route.prefix if route else "unmatched")
        try:
            if path == HEALTH_PATH:
                status = 200
                await _json(send, 200, {"status": "ok"}, request_id)
            elif path in (DOCS_PATH, OPENAPI_PATH) or path.startswith(_ASSETS_PATH):
                status = await self._docs(path, send, request_id)
            elif route is None:
                status = 404
                await _json(send, 404, {"detail": f"no route for {path}"}, request_id)
            else:
                status = await self._proxy(scope, receive, send, route, normalised, request_id)
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

    async def _proxy(self, scope, receive, send, route: Route, path: str, request_id: str) -> int:
        session = self.sessions.get(route.upstream)
        assert session is not None, "lifespan not started"
        url = route.upstream + quote(path, safe=_PATH_SAFE)
        if scope.get("query_string"):
            url += "?" + scope["query_string"].decode("latin-1")
        replaced = _HOP_BY_HOP | {
            b"x-request-id",
            b"x-forwarded-for",
            b"x-forwarded-proto",
            b"x-forwarded-host",
        }
        # Values without surrounding whitespace: `Bearer ` is `Bearer`, i.e. no token.
        forward = [(k, v.strip()) for k, v in scope["headers"] if k.lower() not in replaced]
        incoming = dict((k.lower(), v) for k, v in scope["headers"])
        authorization = incoming.get(b"authorization")
        if authorization is not None and authorization.strip().lower() in (b"", b"bearer"):
            await _json(
                send, 401, {"detail": "not authenticated"}, request_id, [(b"www-authenticate", b"Bearer")]
            )
            return 401
        # The gateway is the edge: a caller's own X-Forwarded-For is not passed on (the services would take its
        # first entry for the client's address); the one entry is the peer this gateway saw.
        chain = (scope.get("client") or ("", 0))[0].encode()
        forward += [
            (b"x-request-id", request_id.encode()),
            (b"x-forwarded-for", chain),
            (b"x-forwarded-proto", scope.get("scheme", "http").encode()),
        ]
        host = incoming.get(b"host")
        if host:
            forward.append((b"x-forwarded-host", host))
        has_body = any(k.lower() in (b"content-length", b"transfer-encoding") for k, _ in scope["headers"])
        try:
            body = await self._read_body(incoming, receive) if has_body else None
        except _Refused as refused:
            await _json(
                send, refused.status, {"detail": refused.detail}, request_id, [(b"connection", b"close")]
            )
            return refused.status
        headers = [(k.decode("latin-1"), v.decode("latin-1")) for k, v in forward]
        try:
            target = URL(url, encoded=True)
        except ValueError:
            await _json(send, 400, {"detail": "malformed request path"}, request_id)
            return 400
        self._in_flight[route.upstream] += 1
        try:
            return await self._exchange(
                session, scope["method"], target, headers, body, send, route, request_id
            )
        finally:
            self._in_flight[route.upstream] -= 1

    async def _exchange(
        self, session, method: str, url: URL, headers, body: bytes | None, send, route: Route, request_id: str
    ) -> int:
        """Send the request upstream and stream its answer back; a failure becomes a JSON 4xx/5xx."""
        busy = self._in_flight[route.upstream] > self.per_upstream_connections
        retries = 1 if method in _IDEMPOTENT else 0
        while True:
            try:
                if tracing.enabled():
                    carrier: dict[str, str] = {}
                    with tracing.client_span(method, str(url), carrier):
                        return await self._relay(
                            session, method, url, [*headers, *carrier.items()], body, send, route, request_id
                        )
                return await self._relay(session, method, url, headers, body, send, route, request_id)
            except aiohttp.ConnectionTimeoutError:
                if busy:  # every connection to this upstream was taken for the whole wait
                    await _json(send, 503, {"detail": f"upstream {route.upstream} busy"}, request_id)
                    return 503
                await _json(send, 504, {"detail": f"upstream {route.upstream} timed out"}, request_id)
                return 504
            except (aiohttp.ServerTimeoutError, TimeoutError):
                await _json(send, 504, {"detail": f"upstream {route.upstream} timed out"}, request_id)
                return 504
            except aiohttp.ClientConnectorError:
                await _json(send, 502, {"detail": f"upstream {route.upstream} unavailable"}, request_id)
                return 502
            except (
                aiohttp.ServerDisconnectedError,
                aiohttp.ClientOSError,
                aiohttp.ClientPayloadError,
            ) as exc:
                # Most often a keep-alive connection the service closed as we reused it: safe to resend only
                # when the method is idempotent (the body is buffered, so it can be sent again).
                if retries:
                    retries -= 1
                    logger.info("retrying on a fresh connection", extra={"error": type(exc).__name__})
                    continue
                await _json(send, 502, {"detail": f"upstream {route.upstream} unavailable"}, request_id)
                return 502
            except ValueError:  # a header value aiohttp will not send
                await _json(send, 400, {"detail": "malformed request headers"}, request_id)
                return 400
            except (aiohttp.ClientError, OSError):
                await _json(send, 502, {"detail": f"upstream {route.upstream} unavailable"}, request_id)
                return 502

    async def _relay(
        self, session, method: str, url: URL, headers, body: bytes | None, send, route: Route, request_id: str
    ) -> int:
        async with session.request(
            method, url, headers=headers, data=body, allow_redirects=False
        ) as response:
            out_headers = [
                (k, _rewrite_location(v, route.upstream) if k.lower() == b"location" else v)
                for k, v in response.raw_headers
                if k.lower() not in _HOP_BY_HOP and k.lower() not in _OWN_HEADERS
            ]
            if "x-request-id" not in response.headers:  # case-insensitive
                out_headers.append((b"x-request-id", request_id.encode()))
            await send({"type": "http.response.start", "status": response.status, "headers": out_headers})
            try:
                async for chunk in response.content.iter_any():
                    await send({"type": "http.response.body", "body": chunk, "more_body": True})
            except (aiohttp.ClientError, OSError, TimeoutError):
                # Headers are already out; all we can do is end the body (the client sees a short response).
                logger.warning("upstream broke off mid-response", extra={"request_id": request_id})
            await send({"type": "http.response.body", "body": b"", "more_body": False})
            return response.status

    async def _read_body(self, incoming: dict[bytes, bytes], receive) -> bytes:
        """The whole request body, within the size limit and the per-read timeout (else `_Refused`)."""
        declared = incoming.get(b"content-length")
        if declared is not None and declared.strip().isdigit() and int(declared) > self.max_body_bytes:
            raise _Refused(413, f"request body larger than {self.max_body_bytes} bytes")
        chunks: list[bytes] = []
        size = 0
        while True:
            try:
                message = await asyncio.wait_for(receive(), self.body_timeout)
            except TimeoutError:
                raise _Refused(408, f"request body not received within {self.body_timeout:g} s") from None
            if message["type"] == "http.disconnect":
                raise _Refused(400, "client went away mid-body")
            chunk = message.get("body", b"")
            size += len(chunk)
            if size > self.max_body_bytes:
                raise _Refused(413, f"request body larger than {self.max_body_bytes} bytes")
            chunks.append(chunk)
            if not message.get("more_body", False):
                return b"".join(chunks)

    # --- the combined API docs ---------------------------------------------------------------------------
    async def _docs(self, path: str, send, request_id: str) -> int:
        if path == DOCS_PATH:
            page = get_swagger_ui_html(
                openapi_url=OPENAPI_PATH,
                title="commerce-platform API",
                swagger_js_url=_ASSETS_PATH + "swagger-ui-bundle.js",
                swagger_css_url=_ASSETS_PATH + "swagger-ui.css",
                swagger_favicon_url=_ASSETS_PATH + "favicon.png",
            )
            await _raw(send, 200, page.body, b"text/html; charset=utf-8", request_id)
            return 200
        if path == OPENAPI_PATH:
            document = await self._combined_openapi()
            if document is None:
                await _json(
                    send, 502, {"detail": "an upstream's OpenAPI document is unavailable"}, request_id
                )
                return 502
            await _raw(send, 200, document, b"application/json", request_id)
            return 200
        name = path.removeprefix(_ASSETS_PATH)
        if name not in _ASSETS:
            await _json(send, 404, {"detail": f"no route for {path}"}, request_id)
            return 404
        await _raw(send, 200, (_ASSET_DIR / name).read_bytes(), _ASSETS[name].encode(), request_id)
        return 200

    async def _combined_openapi(self) -> bytes | None:
        """Every service's public operations (paths under its routed prefixes) in one OpenAPI document."""
        if self._openapi is not None:
            return self._openapi
        combined: dict = {
            "openapi": "3.1.0",
            "info": {"title": "commerce-platform", "version": "1"},
            "paths": {},
        }
        schemas: dict = {}
        security: dict = {}
        for upstream in sorted({r.upstream for r in self.routes}):
            prefixes = [r for r in self.routes if r.upstream == upstream]
            try:
                async with self.sessions[upstream].get(upstream + OPENAPI_PATH) as response:
                    response.raise_for_status()
                    document = json.loads(await response.read())
            except (aiohttp.ClientError, TimeoutError, ValueError):
                return None
            combined["openapi"] = document.get("openapi", combined["openapi"])
            for api_path, operations in document.get("paths", {}).items():
                if any(r.matches(api_path) for r in prefixes):
                    combined["paths"][api_path] = operations
            components = document.get("components", {})
            schemas |= components.get("schemas", {})
            security |= components.get("securitySchemes", {})
        combined["components"] = {"schemas": schemas, "securitySchemes": security}
        self._openapi = json.dumps(combined).encode()
        return self._openapi


def _rewrite_location(value: bytes, upstream: str) -> bytes:
    """A redirect to the upstream itself (e.g. FastAPI's trailing-slash one) points at the gateway instead."""
    prefix = upstream.encode()
    if value.startswith(prefix) and value[len(prefix) : len(prefix) + 1] in (b"", b"/", b"?"):
        return value[len(prefix) :] or b"/"
    return value


async def _json(
    send, status: int, payload: dict, request_id: str, headers: list[tuple[bytes, bytes]] | None = None
) -> None:
    await _raw(send, status, json.dumps(payload).encode(), b"application/json", request_id, headers)


async def _raw(
    send,
    status: int,
    body: bytes,
    content_type: bytes,
    request_id: str,
    headers: list[tuple[bytes, bytes]] | None = None,
) -> None:
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [
                (b"content-type", content_type),
                (b"content-length", str(len(body)).encode()),
                (b"x-request-id", request_id.encode()),
                *(headers or []),
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
    for name in ("uvicorn", "uvicorn.error"):
        logging.getLogger(name).handlers[:] = []
        logging.getLogger(name).propagate = True


def _trace_id(record: logging.LogRecord) -> bool:
    if not hasattr(record, "trace_id"):
        record.trace_id = tracing.current_trace_id()
    return True


def app_from_env() -> tracing.TracingMiddleware:
    """uvicorn factory: `uvicorn --factory commerce_ops.local.gateway:app_from_env`."""
    configure_logging(os.environ.get("LOG_LEVEL", "INFO"))
    routes = json.loads(os.environ[ROUTES_ENV])
    traces = tracing.Tracing(
        "gateway", os.environ.get("OTEL_TRACES_EXPORTER", "none"), os.environ.get("TRACES_FILE")
    )
    gateway = Gateway(routes, float(os.environ.get(TIMEOUT_ENV, "30")), traces)
    return tracing.TracingMiddleware(gateway)
