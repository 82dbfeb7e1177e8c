"""The gateway against a real backend over real HTTP: routing, streaming, request ids, 502/504/404."""

from __future__ import annotations

import asyncio
import socket
import threading
import time

import httpx
import pytest
import uvicorn

from commerce_ops.local.gateway import HEALTH_PATH, Gateway
from commerce_ops.local.ports import free_port

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
    if scope["path"] == "/echo/redirect":  # as FastAPI's trailing-slash redirect: an absolute URL to itself
        host, port = scope["server"]
        location = f"http://{host}:{port}/echo/elsewhere".encode()
        await send({"type": "http.response.start", "status": 307, "headers": [(b"location", location)]})
        await send({"type": "http.response.body", "body": b""})
        return
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
            body_timeout_seconds=0.5,
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


def test_a_callers_own_forwarded_for_is_not_believed(gateway_url):
    """The gateway is the edge: a client claiming another address in X-Forwarded-For is not passed on."""
    response = httpx.get(f"{gateway_url}/echo", headers={"X-Forwarded-For": "203.0.113.7"})
    assert response.json()["forwarded_for"] == "127.0.0.1"


def test_makes_a_request_id_when_the_caller_has_none(gateway_url):
    response = httpx.get(f"{gateway_url}/echo")
    assert len(response.json()["request_id"]) == 32
    assert response.headers["x-request-id"] == response.json()["request_id"]


def test_carries_large_bodies_both_ways(gateway_url):
    """Up to its limit a request body goes through whole (read before an upstream connection is taken); a
    response streams."""
    upload = httpx.post(f"{gateway_url}/echo/upload", content=(b"x" * 65536 for _ in range(16)))
    assert upload.json()["bytes"] == 16 * 65536  # 1 MiB: the limit, accepted
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


# --- the edge's hardening (issue 14): each test fails against the gateway before it ------------------------


def raw_request(url: str, request: bytes, *, then: bytes = b"", pause: float = 0.0) -> bytes:
    """Send bytes exactly as given (a client library would refuse or fix them) and read the whole answer."""
    host, port = url.removeprefix("http://").split(":")
    with socket.create_connection((host, int(port)), timeout=10) as sock:
        sock.sendall(request)
        if pause:
            time.sleep(pause)
        if then:
            sock.sendall(then)
        answer = b""
        while chunk := sock.recv(65536):
            answer += chunk
            if b"\r\n\r\n" in answer and _complete(answer):
                break
        return answer


def _complete(answer: bytes) -> bool:
    head, _, body = answer.partition(b"\r\n\r\n")
    for line in head.split(b"\r\n"):
        if line.lower().startswith(b"content-length:"):
            return len(body) >= int(line.split(b":", 1)[1])
    return False


@pytest.mark.parametrize(
    "path",
    [
        "/echo/../nowhere",
        "/echo/%2e%2e/nowhere",
        "/echo%2F..%2Fnowhere",
        "/echo/a/../../nowhere",
        "/echo/..%2f..%2fnowhere",
        "/../echo",
    ],
)
def test_dot_segments_and_encoded_slashes_are_resolved_before_routing(gateway_url, path):
    """What is routed is what the upstream sees: climbing out of a public prefix reaches no route (404)."""
    answer = raw_request(
        gateway_url, f"GET {path} HTTP/1.1\r\nHost: gw\r\nConnection: close\r\n\r\n".encode()
    )
    assert answer.startswith(b"HTTP/1.1 404"), answer[:200]


def test_the_normalised_path_is_the_one_forwarded(gateway_url):
    answer = raw_request(
        gateway_url, b"GET /echo/a/./b//c/../d HTTP/1.1\r\nHost: gw\r\nConnection: close\r\n\r\n"
    )
    assert answer.startswith(b"HTTP/1.1 201") and b'"path": "/echo/a/b/d"' in answer, answer[:400]


def test_a_redirect_to_the_upstream_points_at_the_gateway(gateway_url):
    response = httpx.get(f"{gateway_url}/echo/redirect")
    assert (response.status_code, response.headers["location"]) == (307, "/echo/elsewhere")


def test_one_date_and_one_server_header(gateway_url):
    response = httpx.get(f"{gateway_url}/echo")
    assert len(response.headers.get_list("date")) == 1
    assert len(response.headers.get_list("server")) == 1


def test_an_empty_bearer_is_401_not_502(gateway_url):
    answer = raw_request(
        gateway_url, b"GET /echo HTTP/1.1\r\nHost: gw\r\nAuthorization: Bearer \r\nConnection: close\r\n\r\n"
    )
    assert answer.startswith(b"HTTP/1.1 401"), answer[:200]
    assert b"www-authenticate: Bearer" in answer.lower().replace(b"bearer", b"Bearer")


def test_a_body_over_the_limit_is_413(gateway_url):
    declared = httpx.post(f"{gateway_url}/echo", content=b"x" * (2 * 1024 * 1024))
    assert declared.status_code == 413
    chunked = httpx.post(f"{gateway_url}/echo", content=(b"x" * 65536 for _ in range(32)))  # no length
    assert chunked.status_code == 413


def test_a_body_that_stops_arriving_is_408(gateway_url):
    answer = raw_request(
        gateway_url,
        b"POST /echo HTTP/1.1\r\nHost: gw\r\nContent-Length: 100\r\nConnection: close\r\n\r\n" + b"x" * 10,
        pause=1.5,  # longer than the fixture's 0.5 s body timeout
    )
    assert answer.startswith(b"HTTP/1.1 408"), answer[:200]


def test_slow_uploads_hold_no_upstream_connection(gateway_url):
    """Sockets dribbling request bodies (the finding: 205 of them starved everyone) take no upstream
    connection: with a pool of 2 per upstream and 6 stalled uploads, a normal request still goes through."""
    with _Server(backend) as backend_url:
        gateway = Gateway({"/echo": backend_url}, timeout_seconds=5, per_upstream_connections=2)
        with _Server(gateway) as url:
            host, port = url.removeprefix("http://").split(":")
            stalled = []
            try:
                for _ in range(6):
                    sock = socket.create_connection((host, int(port)), timeout=10)
                    sock.sendall(b"POST /echo HTTP/1.1\r\nHost: gw\r\nContent-Length: 1000\r\n\r\nxx")
                    stalled.append(sock)
                response = httpx.get(f"{url}/echo", timeout=8)
                assert response.status_code == 201
            finally:
                for sock in stalled:
                    sock.close()


class _ClosesKeptAliveConnections:
    """A raw HTTP/1.1 server that answers the first request on a connection (keep-alive) and then closes the
    connection on reading the next one, as a server whose keep-alive timeout fires just then does."""

    def __init__(self) -> None:
        self.port = free_port()
        self.connections = 0
        self._server = socket.create_server(("127.0.0.1", self.port))
        self._thread = threading.Thread(target=self._serve, daemon=True)

    def _serve(self) -> None:
        while True:
            try:
                conn, _ = self._server.accept()
            except OSError:
                return
            self.connections += 1
            threading.Thread(target=self._answer_once, args=(conn,), daemon=True).start()

    @staticmethod
    def _answer_once(conn: socket.socket) -> None:
        with conn:
            data = b""
            while b"\r\n\r\n" not in data:
                data += conn.recv(65536)
            conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nContent-Type: text/plain\r\n\r\nok")
            conn.recv(65536)  # the next request on this connection: closed without an answer

    def __enter__(self) -> str:
        self._thread.start()
        return f"http://127.0.0.1:{self.port}"

    def __exit__(self, *exc) -> None:
        self._server.close()


def test_a_stale_keep_alive_connection_is_retried_for_idempotent_requests_only():
    with _ClosesKeptAliveConnections() as upstream:
        with _Server(Gateway({"/k": upstream}, timeout_seconds=5)) as url, httpx.Client() as client:
            assert client.get(f"{url}/k/1").status_code == 200
            assert client.get(f"{url}/k/2").status_code == 200  # the kept connection died: sent again
            # A POST on a connection that dies is not repeated (the service may have applied it).
            assert client.post(f"{url}/k/3", content=b"x").status_code == 502
            assert client.get(f"{url}/k/4").status_code == 200
