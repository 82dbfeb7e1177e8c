"""Outgoing HTTP: one shared client per service, explicit timeouts, request-id forwarding, safe retries."""

from __future__ import annotations

import asyncio

import httpx

from service_kit.logging import request_id_var

RETRYABLE_STATUS = {502, 503, 504}


async def _forward_request_id(request: httpx.Request) -> None:
    request_id = request_id_var.get()
    if request_id and "x-request-id" not in request.headers:
        request.headers["X-Request-ID"] = request_id


def create_http_client(timeout_seconds: float = 3.0, max_connections: int = 100) -> httpx.AsyncClient:
    return httpx.AsyncClient(
        timeout=httpx.Timeout(timeout_seconds, connect=min(1.0, timeout_seconds)),
        limits=httpx.Limits(max_connections=max_connections, max_keepalive_connections=max_connections),
        event_hooks={"request": [_forward_request_id]},
    )


async def send(
    client: httpx.AsyncClient,
    method: str,
    url: str,
    *,
    idempotent: bool,
    retries: int = 2,
    **kwargs,
) -> httpx.Response:
    """Send a request; retry connection failures and 502/503/504 only when repeating it is harmless."""
    attempts = 1 + (retries if idempotent else 0)
    for attempt in range(attempts):
        last = attempt == attempts - 1
        try:
            response = await client.request(method, url, **kwargs)
        except (httpx.ConnectError, httpx.ConnectTimeout, httpx.ReadTimeout, httpx.RemoteProtocolError):
            if last:
                raise
        else:
            if response.status_code not in RETRYABLE_STATUS or last:
                return response
        await asyncio.sleep(0.05 * 2**attempt)
    raise AssertionError("unreachable")
