"""The kit's outgoing HTTP client (httpx's API over aiohttp's pool) against a real HTTP/1.1 server on loopback.

The server is a small asyncio one written here so faults can be made exactly: a slow answer, a connection closed
before the answer, a 503; and so it can report what reached it (headers, body, which connection).
"""

from __future__ import annotations

import asyncio
import gzip
import json
from collections.abc import AsyncIterator
from dataclasses import dataclass, field

import httpx
import pytest
from harness import free_port

from service_kit.http import create_http_client, send
from service_kit.logging import request_id_var


@dataclass
class LoopbackServer:
    port: int = 0
    connections: int = 0  # accepted so far
    open_now: int = 0
    most_open: int = 0
    hits: dict[str, int] = field(default_factory=dict)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    async def handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.connections += 1
        self.open_now += 1
        self.most_open = max(self.most_open, self.open_now)
        peer_port = writer.get_extra_info("peername")[1]
        try:
            while True:
                head = await reader.readuntil(b"\r\n\r\n")
                request_line, *header_lines = head.decode("latin-1").rstrip("\r\n").split("\r\n")
                method, target, _ = request_line.split(" ")
                headers = [tuple(line.split(": ", 1)) for line in header_lines]
                length = int(next((v for k, v in headers if k.lower() == "content-length"), "0"))
                body = await reader.readexactly(length)
                path = target.split("?")[0]
                self.hits[path] = self.hits.get(path, 0) + 1
                if path == "/drop":
                    return  # closed without an answer
                if path == "/slow":
                    await asyncio.sleep(0.6)
                if path == "/busy":
                    await asyncio.sleep(0.05)
                status, extra, payload = 200, [], b""
                if path == "/unavailable":
                    status, payload = 503, b'{"detail": "try later"}'
                elif path == "/gzip":
                    extra, payload = [("Content-Encoding", "gzip")], gzip.compress(b'{"zipped": true}')
                else:
                    echo = {"method": method, "target": target, "headers": headers, "body": body.decode()}
                    payload = json.dumps(echo | {"peer_port": peer_port}).encode()
                lines = [
                    f"HTTP/1.1 {status} X",
                    "Content-Type: application/json",
                    f"Content-Length: {len(payload)}",
                ]
                lines += [f"{k}: {v}" for k, v in extra]
                writer.write(("\r\n".join(lines) + "\r\n\r\n").encode() + payload)
                await writer.drain()
        except (asyncio.IncompleteReadError, ConnectionError):
            pass
        finally:
            self.open_now -= 1
            writer.close()


@pytest.fixture(scope="module")
async def server() -> AsyncIterator[LoopbackServer]:
    state = LoopbackServer()
    listener = await asyncio.start_server(state.handle, "127.0.0.1", 0)
    state.port = listener.sockets[0].getsockname()[1]
    try:
        yield state
    finally:
        listener.close()
        for _ in range(40):  # let handlers finish (the slow one), so none is cancelled mid-sleep
            if not state.open_now:
                break
            await asyncio.sleep(0.05)


@pytest.fixture
async def client() -> AsyncIterator[httpx.AsyncClient]:
    http = create_http_client(timeout_seconds=1.0)
    try:
        yield http
    finally:
        await http.aclose()


async def test_a_request_and_its_answer_travel_unchanged(server, client):
    token = request_id_var.set("req-123")
    try:
        response = await client.post(
            server.url + "/echo?next=%2Fa%20b&x=1",
            json={"amount": "9.99", "name": "crème"},
            headers={"Authorization": "Bearer abc", "Idempotency-Key": "k-1"},
        )
    finally:
        request_id_var.reset(token)
    assert response.status_code == 200
    assert response.headers["content-type"] == "application/json"
    seen = response.json()
    assert (seen["method"], seen["target"]) == ("POST", "/echo?next=%2Fa%20b&x=1")
    assert json.loads(seen["body"]) == {"amount": "9.99", "name": "crème"}
    headers = [(k.lower(), v) for k, v in seen["headers"]]
    names = [k for k, _ in headers]
    assert len(names) == len(set(names)), "no header sent twice"
    assert dict(headers) | {"content-length": "x"} == {
        "host": f"127.0.0.1:{server.port}",
        "accept": "*/*",
        "accept-encoding": "gzip, deflate, zstd"
        if "zstd" in dict(headers)["accept-encoding"]
        else "gzip, deflate",
        "connection": "keep-alive",
        "user-agent": f"python-httpx/{httpx.__version__}",
        "authorization": "Bearer abc",
        "idempotency-key": "k-1",
        "x-request-id": "req-123",
        "content-type": "application/json",
        "content-length": "x",
    }


async def test_sequential_requests_reuse_one_keep_alive_connection(server, client):
    before = server.connections
    ports = {(await client.get(server.url + "/echo")).json()["peer_port"] for _ in range(5)}
    assert len(ports) == 1 and server.connections - before == 1


async def test_concurrent_requests_stay_within_the_connection_limit(server):
    http = create_http_client(timeout_seconds=5.0, max_connections=4)
    try:
        responses = await asyncio.gather(*(http.get(server.url + "/busy") for _ in range(20)))
    finally:
        await http.aclose()
    assert [r.status_code for r in responses] == [200] * 20
    assert server.most_open <= 4 + 1  # + the shared client's idle keep-alive connection from the other tests


async def test_a_compressed_answer_is_decoded(server, client):
    response = await client.get(server.url + "/gzip")
    assert response.json() == {"zipped": True}


async def test_failures_are_httpx_errors(server, client):
    with pytest.raises(httpx.ConnectError):
        await client.get(f"http://127.0.0.1:{free_port()}/")
    with pytest.raises(httpx.ReadTimeout):
        await client.get(server.url + "/slow", timeout=0.3)
    with pytest.raises(httpx.RemoteProtocolError):
        await client.get(server.url + "/drop")
    # The client is still usable after each failure.
    assert (await client.get(server.url + "/echo")).status_code == 200


async def test_waiting_too_long_for_a_pooled_connection_is_a_connect_timeout(server):
    limited = create_http_client(timeout_seconds=2.0, max_connections=1)
    try:
        # The pool and connect timeouts together bound the wait for a connection (aiohttp's `connect`).
        timeout = httpx.Timeout(2, pool=0.1, connect=0.1)
        slow, waiting = await asyncio.gather(
            limited.get(server.url + "/slow", timeout=timeout),
            limited.get(server.url + "/echo", timeout=timeout),
            return_exceptions=True,
        )
        assert slow.status_code == 200
        assert isinstance(waiting, httpx.ConnectTimeout)
        assert (await limited.get(server.url + "/echo")).status_code == 200
    finally:
        await limited.aclose()


async def test_send_retries_only_what_is_safe_to_repeat(server, client):
    server.hits.pop("/unavailable", None)
    response = await send(client, "POST", server.url + "/unavailable", idempotent=True, retries=2)
    assert response.status_code == 503 and server.hits["/unavailable"] == 3
    response = await send(client, "POST", server.url + "/unavailable", idempotent=False, retries=2)
    assert response.status_code == 503 and server.hits["/unavailable"] == 4
    server.hits.pop("/drop", None)
    with pytest.raises(httpx.RemoteProtocolError):
        await send(client, "POST", server.url + "/drop", idempotent=True, retries=1)
    assert server.hits["/drop"] == 2
    with pytest.raises(httpx.RemoteProtocolError):
        await send(client, "POST", server.url + "/drop", idempotent=False, retries=1)
    assert server.hits["/drop"] == 3


async def test_send_goes_straight_to_the_pool_with_json_params_and_the_request_id(server, client):
    """`send()` (orders' calls) builds the request itself, without httpx: what reaches the server is the same."""
    token = request_id_var.set("req-456")
    try:
        reply = await send(
            client,
            "POST",
            server.url + "/echo",
            idempotent=False,
            json={"amount": "9.99", "name": "crème"},
            params={"order_id": "a b"},
            headers={"Idempotency-Key": "k-2"},
        )
    finally:
        request_id_var.reset(token)
    assert reply.status_code == 200 and reply.headers["content-type"] == "application/json"
    seen = reply.json()
    assert (seen["method"], seen["target"]) == ("POST", "/echo?order_id=a+b")
    assert json.loads(seen["body"]) == {"amount": "9.99", "name": "crème"}
    headers = {k.lower(): v for k, v in seen["headers"]}
    assert headers["x-request-id"] == "req-456" and headers["idempotency-key"] == "k-2"
    assert headers["content-type"] == "application/json"
    with pytest.raises(httpx.ConnectError):
        await send(client, "GET", f"http://127.0.0.1:{free_port()}/", idempotent=True, retries=0)
    with pytest.raises(httpx.ReadTimeout):
        await send(client, "GET", server.url + "/slow", idempotent=True, retries=0, timeout=0.3)
