"""The gateway against a real backend over real HTTP: routing, streaming, request ids, 502/504/404."""

from __future__ import annotations

import asyncio
import threading
import time

import httpx
import pytest
import uvicorn

from commerce_platform.local.gateway import HEALTH_PATH, Gateway
from commerce_platform.local.ports import free_port

pytestmark = pytest.mark.e2e


async def backend(scope, receive, send):
    """A tiny real service: echoes what it received, streams, or is slow."""
    if scope["type"] != "http":
        return
    body = b""
    while True:
        message = await receive()
        body += message.get("body", b"")
        if not message.get("more_body"):
            break
    headers = dict(scope["headers"])
    if scope["path"] == "/slow":
        await asyncio.sleep(1.5)
    if scope["path"] == "/stream/big":
        await send(
            {"type": "http.response.start", "status": 200, "headers": [(b"content-type", b"text/plain")]}
        )
        for i in range(64):
            await send(
                {"type": "http.response.body", "body": bytes([65 + i % 26]) * 16384, "more_body": True}
            )
        await send({"type": "http.response.body", "body": b""})
        return
    payload = (
        f'{{"method": "{scope["method"]}", "path": "{scope["path"]}", '
        f'"query": "{scope["query_string"].decode()}", "bytes": {len(body)}, '
        f'"request_id": "{headers.get(b"x-request-id", b"").decode()}", '
        f'"forwarded_for": "{headers.get(b"x-forwarded-for", b"").decode()}"}}'
    ).encode()
    await send(
        {"type": "http.response.start", "status": 201, "headers": [(b"content-type", b"application/json")]}
    )
    await send({"type": "http.response.body", "body": payload})


class _Server:
    def __init__(self, app) -> None:
        self.port = free_port()
        # As `ops dev up` runs the gateway: it is the edge, so no trusting of a caller's X-Forwarded-For.
        config = uvicorn.Config(
            app, host="127.0.0.1", port=self.port, log_level="warning", proxy_headers=False
        )
        self.server = uvicorn.Server(config)
        self.thread = threading.Thread(target=self.server.run, daemon=True)

    def __enter__(self) -> str:
        self.thread.start()
        deadline = time.monotonic() + 10
        while not self.server.started:
            assert time.monotonic() < deadline, "server did not start"
            time.sleep(0.02)
        return f"http://127.0.0.1:{self.port}"

    def __exit__(self, *exc) -> None:
        self.server.should_exit = True
        self.thread.join(10)


@pytest.fixture(scope="module")
def gateway_url():
    closed_port = free_port()  # nothing listens here: a backend that is down
    with _Server(backend) as backend_url:
        gateway = Gateway(
            {
                "/echo": backend_url,
                "/stream": backend_url,
                "/slow": backend_url,
                "/down": f"http://127.0.0.1:{closed_port}",
            },
            timeout_seconds=0.5,
        )
        with _Server(gateway) as url:
            yield url


def test_routes_by_prefix_and_passes_method_path_query_body_and_request_id(gateway_url):
    response = httpx.post(
        f"{gateway_url}/echo/a/b?x=1&y=2", content=b"z" * 1000, headers={"X-Request-ID": "trace-123"}
    )
    assert response.status_code == 201
    assert response.json() == {
        "method": "POST",
        "path": "/echo/a/b",
        "query": "x=1&y=2",
        "bytes": 1000,
        "request_id": "trace-123",
        "forwarded_for": "127.0.0.1",
    }
    assert response.headers["x-request-id"] == "trace-123"


def test_appends_the_client_to_an_existing_forwarded_chain(gateway_url):
    response = httpx.get(f"{gateway_url}/echo", headers={"X-Forwarded-For": "203.0.113.7"})
    assert response.json()["forwarded_for"] == "203.0.113.7, 127.0.0.1"


def test_makes_a_request_id_when_the_caller_has_none(gateway_url):
    response = httpx.get(f"{gateway_url}/echo")
    assert len(response.json()["request_id"]) == 32
    assert response.headers["x-request-id"] == response.json()["request_id"]


def test_streams_large_bodies_both_ways(gateway_url):
    upload = httpx.post(f"{gateway_url}/echo/upload", content=(b"x" * 65536 for _ in range(32)))
    assert upload.json()["bytes"] == 32 * 65536
    with httpx.stream("GET", f"{gateway_url}/stream/big") as response:
        chunks = list(response.iter_bytes())
    assert sum(map(len, chunks)) == 64 * 16384


def test_unknown_path_and_prefix_lookalike_are_404_json(gateway_url):
    for path in ("/nowhere", "/echoes"):  # "/echoes" must not match the "/echo" route
        response = httpx.get(gateway_url + path)
        assert response.status_code == 404
        assert response.json() == {"detail": f"no route for {path}"}


def test_backend_down_is_502_and_slow_backend_is_504(gateway_url):
    down = httpx.get(f"{gateway_url}/down/x")
    assert down.status_code == 502
    assert "unavailable" in down.json()["detail"]
    slow = httpx.get(f"{gateway_url}/slow", timeout=10)
    assert slow.status_code == 504
    assert "timed out" in slow.json()["detail"]


def test_own_health_endpoint(gateway_url):
    assert httpx.get(gateway_url + HEALTH_PATH).json() == {"status": "ok"}
