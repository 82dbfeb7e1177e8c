"""JSON logs, one line per request, with a request id (and, when tracing is on, the trace id) that follows the
request across services; the same middleware keeps the request metrics (service_kit.metrics)."""

from __future__ import annotations

import logging
import re
import secrets
import sys
import time
from contextvars import ContextVar

from pythonjsonlogger.json import JsonFormatter

from service_kit import metrics, tracing

REQUEST_ID_HEADER = "x-request-id"
_REQUEST_ID_KEY = REQUEST_ID_HEADER.encode()  # ASGI header names are lower-case bytes
request_id_var: ContextVar[str | None] = ContextVar("request_id", default=None)

# Accept a caller's id only if it is short and printable, so logs can't be forged or flooded through it.
_VALID_REQUEST_ID = re.compile(r"^[A-Za-z0-9._:-]{1,128}$")

request_logger = logging.getLogger("service.request")


class _ContextFilter(logging.Filter):
    def __init__(self, service: str) -> None:
        super().__init__()
        self.service = service

    def filter(self, record: logging.LogRecord) -> bool:
        record.service = self.service
        if not hasattr(record, "request_id"):
            record.request_id = request_id_var.get()
        if not hasattr(record, "trace_id"):
            record.trace_id = tracing.current_trace_id()
        return True


def configure_logging(service: str, level: str = "INFO") -> None:
    handler = logging.StreamHandler(sys.stdout)
    handler.setFormatter(
        JsonFormatter(
            "%(asctime)s %(levelname)s %(name)s %(message)s %(service)s %(request_id)s %(trace_id)s",
            rename_fields={"asctime": "timestamp", "levelname": "level", "name": "logger"},
        )
    )
    handler.addFilter(_ContextFilter(service))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
    # Requests are logged once, by RequestContextMiddleware; uvicorn's own access line would duplicate them.
    logging.getLogger("uvicorn.access").disabled = True
    for name in ("uvicorn", "uvicorn.error"):
        logging.getLogger(name).handlers[:] = []
        logging.getLogger(name).propagate = True


def incoming_request_id(raw: bytes | None) -> str:
    if raw:
        value = raw.decode("latin-1")
        if _VALID_REQUEST_ID.match(value):
            return value
    return secrets.token_hex(16)  # 32 hex digits like uuid4().hex, without building a UUID per request


class RequestContextMiddleware:
    """Pure ASGI middleware: sets the request id, returns it, logs one line per request with its duration, and
    records the request in the metrics (in flight, duration by route template) and on the trace's server span."""

    def __init__(self, app) -> None:
        self.app = app

    async def __call__(self, scope, receive, send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        request_id = incoming_request_id(_header(scope, _REQUEST_ID_KEY))
        token = request_id_var.set(request_id)
        status = 500
        measured = metrics.enabled()
        if measured:
            metrics.IN_FLIGHT.inc()

        async def send_with_request_id(message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                if tracing.enabled():  # the server span ends with the body: name it while it is open
                    tracing.name_server_span(scope["method"], metrics.route_template(scope))
                message["headers"] = [*message.get("headers", ()), (b"x-request-id", request_id.encode())]
            await send(message)

        try:
            await self.app(scope, receive, send_with_request_id)
        finally:
            if measured:
                metrics.IN_FLIGHT.dec()
                metrics.observe_request(scope, status, started)
            # At WARNING (the bench, quiet production) skip building the line at all: it is per request.
            if request_logger.isEnabledFor(logging.INFO):
                _log_request(scope, request_id, status, started)
            request_id_var.reset(token)


def _header(scope, name: bytes) -> bytes | None:
    for key, value in scope.get("headers") or ():
        if key == name:
            return value
    return None


def _log_request(scope, request_id: str, status: int, started: float) -> None:
    client = scope.get("client")
    request_logger.info(
        "request",
        extra={
            "request_id": request_id,
            "method": scope["method"],
            "path": scope["path"],
            "status": status,
            "duration_ms": round((time.perf_counter() - started) * 1000, 3),
            "client_ip": client[0] if client else None,
            "user_agent": (_header(scope, b"user-agent") or b"").decode("latin-1") or None,
        },
    )
