"""Outgoing HTTP: one shared client per service, explicit timeouts, request-id forwarding, safe retries.

Two ways out, over one aiohttp connection pool (`AiohttpTransport`):
- `send()`, the service-to-service calls (orders' saga): straight onto the aiohttp session, no httpx layer. It
  builds the request itself (headers, JSON body, the caller's service token), reads the answer whole into a
  `Reply` and maps aiohttp's errors to httpx's, so callers handle one set of exceptions. On the saga's three calls
  per order httpx's request/response models, auth flow and hooks cost more CPU than the exchange itself.
- the `httpx.AsyncClient` of `create_http_client` (JWKS, the active check, service tokens: rare, cached calls),
  httpx's API over the same pool. httpcore's own pool, httpx's default, rescans every pooled connection
  (polling each idle socket) twice per request; aiohttp's hands out a keep-alive connection without a scan.

Every call is measured (service_kit.metrics: latency by target name, method and status; errors by kind). With
tracing on, httpx's calls go through OpenTelemetry's httpx transport and `send()` makes its client span itself
(service_kit.tracing.client_span); both send `traceparent`.

aiohttp (and yarl) are imported on the first call out, not with this module: importing aiohttp costs ~0.1 s of
CPU (its connector builds SSL contexts at import), and a service that never calls out (users: it verifies tokens
with its own key) never needs it.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any
from urllib.parse import urlencode

import httpx

from service_kit import metrics, tracing
from service_kit.identity import ServiceAuth
from service_kit.logging import request_id_var

if TYPE_CHECKING:
    import aiohttp
    from yarl import URL

RETRYABLE_STATUS = {502, 503, 504}
# Below uvicorn's own keep-alive timeout (5 s), so the client drops an idle connection before the server does
# and never sends a request into a connection the server is closing.
KEEPALIVE_SECONDS = 4.0


async def _forward_request_id(request: httpx.Request) -> None:
    request_id = request_id_var.get()
    if request_id and "x-request-id" not in request.headers:
        request.headers["X-Request-ID"] = request_id


class Reply:
    """An answer read whole, as `send()` returns it: status, headers (case-insensitive), body."""

    __slots__ = ("status_code", "headers", "content")

    def __init__(self, status_code: int, headers: Mapping[str, str], content: bytes) -> None:
        self.status_code = status_code
        self.headers = headers
        self.content = content

    def json(self) -> Any:
        return json.loads(self.content)

    @property
    def text(self) -> str:
        return self.content.decode("utf-8", errors="replace")


def _client_timeout(connect: float | None, pool: float | None, read: float | None) -> aiohttp.ClientTimeout:
    import aiohttp

    return aiohttp.ClientTimeout(
        total=None,
        # aiohttp's `connect` covers waiting for a pooled connection and opening a new one.
        connect=None if connect is None and pool is None else (connect or 0) + (pool or 0),
        sock_connect=connect,
        sock_read=read,
    )


class AiohttpTransport(httpx.AsyncBaseTransport):
    """One `aiohttp.ClientSession` (its connection pool), used by `send()` directly and by httpx as its transport,
    with aiohttp's errors mapped to httpx's.

    Responses are read whole (the services exchange small JSON bodies; nothing streams through this client).
    Through httpx, httpx keeps doing what it does above the transport: headers, JSON, content decoding, hooks.
    """

    def __init__(
        self,
        max_connections: int,
        keepalive_seconds: float = KEEPALIVE_SECONDS,
        targets: dict[str, str] | None = None,
    ) -> None:
        self.max_connections = max_connections
        self.keepalive_seconds = keepalive_seconds
        self.targets = targets or {}  # "host:port" → the name calls are measured under
        self._session: aiohttp.ClientSession | None = None
        self._timeouts: dict[float, aiohttp.ClientTimeout] = {}

    def _session_on_this_loop(self) -> aiohttp.ClientSession:
        # Made on first use: aiohttp binds a session to the running event loop.
        if self._session is None or self._session.closed:
            import aiohttp

            self._session = aiohttp.ClientSession(
                connector=aiohttp.TCPConnector(
                    limit=self.max_connections, keepalive_timeout=self.keepalive_seconds, use_dns_cache=True
                ),
                # Sent only when the caller sets them (httpx sets its own); bodies are passed on undecoded.
                skip_auto_headers=("User-Agent", "Accept", "Accept-Encoding", "Content-Type"),
                auto_decompress=False,
                cookie_jar=aiohttp.DummyCookieJar(),
            )
        return self._session

    def timeout(self, seconds: float) -> aiohttp.ClientTimeout:
        """One value for connect, pool wait and read, as httpx applies a plain number."""
        found = self._timeouts.get(seconds)
        if found is None:
            found = self._timeouts[seconds] = _client_timeout(seconds, seconds, seconds)
        return found

    async def exchange(
        self,
        method: str,
        url: URL,
        headers: Mapping[str, str] | list[tuple[str, str]],
        body: bytes | None,
        timeout: aiohttp.ClientTimeout,
    ) -> tuple[int, Any, bytes]:
        """One request, read whole: (status, headers, body); measured; failures as httpx's exceptions."""
        import aiohttp

        measured = metrics.enabled()
        target = self.targets.get(url.raw_authority, metrics.OTHER_TARGET) if measured else ""
        started = time.perf_counter()
        status = "error"
        try:
            async with self._session_on_this_loop().request(
                method, url, headers=headers, data=body, timeout=timeout, allow_redirects=False
            ) as response:
                answer = response.status, response.headers, await response.read()
            status = str(answer[0])
            return answer
        except (aiohttp.ClientError, OSError, TimeoutError) as exc:
            error = _transport_error(exc)
            if measured:
                metrics.CLIENT_ERRORS.labels(target, _error_kind(error)).inc()
            raise error from exc
        finally:
            if measured:
                metrics.CLIENT_DURATION.labels(target, method, status).observe(time.perf_counter() - started)

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        timeouts = request.extensions.get("timeout", {})
        timeout = _client_timeout(timeouts.get("connect"), timeouts.get("pool"), timeouts.get("read"))
        # aiohttp derives Host from the URL; every other header goes as httpx built it.
        headers = [
            (k.decode("latin-1"), v.decode("latin-1")) for k, v in request.headers.raw if k.lower() != b"host"
        ]
        body = await request.aread()
        from yarl import URL

        url = URL(str(request.url), encoded=True)  # exactly as httpx encoded it
        try:
            status, response_headers, content = await self.exchange(
                request.method, url, headers, body or None, timeout
            )
        except httpx.RequestError as exc:
            exc.request = request
            raise
        return httpx.Response(
            status,
            headers=[(k, v) for k, v in response_headers.items()],
            content=content,
            request=request,
            extensions={"http_version": b"HTTP/1.1"},
        )

    async def aclose(self) -> None:
        if self._session is not None:
            await self._session.close()


def _transport_error(exc: BaseException) -> httpx.TransportError:
    """aiohttp's failure as the httpx exception callers handle."""
    import aiohttp

    if isinstance(exc, aiohttp.ConnectionTimeoutError):
        return httpx.ConnectTimeout(str(exc) or "connect timed out")
    if isinstance(exc, aiohttp.SocketTimeoutError | TimeoutError):
        return httpx.ReadTimeout(str(exc) or "read timed out")
    if isinstance(exc, aiohttp.ClientConnectorError):
        return httpx.ConnectError(str(exc))
    if isinstance(
        exc, aiohttp.ServerDisconnectedError | aiohttp.ClientPayloadError | aiohttp.ClientResponseError
    ):
        return httpx.RemoteProtocolError(str(exc) or type(exc).__name__)
    return httpx.NetworkError(str(exc) or type(exc).__name__)


def _error_kind(exc: httpx.TransportError) -> str:
    if isinstance(exc, httpx.TimeoutException):
        return "timeout"
    if isinstance(exc, httpx.ConnectError):
        return "connect"
    if isinstance(exc, httpx.RemoteProtocolError):
        return "protocol"
    return "network"


class HttpClient(httpx.AsyncClient):
    """httpx's client over the kit's aiohttp transport, which `send()` also uses directly (`direct`)."""

    def __init__(self, direct: AiohttpTransport, **kwargs) -> None:
        super().__init__(**kwargs)
        self.direct = direct


def create_http_client(
    timeout_seconds: float = 3.0,
    max_connections: int = 100,
    targets: dict[str, str] | None = None,
    wrap: Callable[[httpx.AsyncBaseTransport], httpx.AsyncBaseTransport] | None = None,
) -> HttpClient:
    """`targets` names the upstreams in the metrics; `wrap` decorates httpx's transport (tracing)."""
    transport = AiohttpTransport(max_connections, targets=targets)
    return HttpClient(
        transport,
        timeout=httpx.Timeout(timeout_seconds, connect=min(1.0, timeout_seconds)),
        transport=wrap(transport) if wrap else transport,
        event_hooks={"request": [_forward_request_id]},
    )


async def send(
    client: HttpClient,
    method: str,
    url: str,
    *,
    idempotent: bool,
    retries: int = 2,
    timeout: float = 3.0,
    headers: dict[str, str] | None = None,
    json: Any = None,
    params: Mapping[str, str] | None = None,
    auth: ServiceAuth | None = None,
) -> Reply:
    """Send a request straight over the client's aiohttp pool; retry connection failures and 502/503/504 only
    when repeating it is harmless. `auth`: this service's token for the target (renewed once on a 401)."""
    headers = dict(headers) if headers else {}
    request_id = request_id_var.get()
    if request_id:
        headers.setdefault("X-Request-ID", request_id)
    body = None
    if json is not None:
        body = _dumps(json)
        headers["Content-Type"] = "application/json"
    if params:
        url = f"{url}?{urlencode(params)}"
    from yarl import URL

    target = URL(url)
    client_timeout = client.direct.timeout(timeout)
    attempts = 1 + (retries if idempotent else 0)
    for attempt in range(attempts):
        last = attempt == attempts - 1
        try:
            reply = await _authorized(client.direct, method, target, headers, body, client_timeout, auth)
        except (httpx.ConnectError, httpx.ConnectTimeout, httpx.ReadTimeout, httpx.RemoteProtocolError):
            if last:
                raise
        else:
            if reply.status_code not in RETRYABLE_STATUS or last:
                return reply
        await asyncio.sleep(0.05 * 2**attempt)
    raise AssertionError("unreachable")


def _dumps(value: Any) -> bytes:
    return json.dumps(value, ensure_ascii=False, separators=(",", ":"), allow_nan=False).encode()


async def _authorized(
    transport: AiohttpTransport,
    method: str,
    url: URL,
    headers: dict[str, str],
    body: bytes | None,
    timeout: aiohttp.ClientTimeout,
    auth: ServiceAuth | None,
) -> Reply:
    async def once() -> Reply:
        if not tracing.enabled():
            return Reply(*await transport.exchange(method, url, headers, body, timeout))
        with tracing.client_span(method, str(url), headers) as span:
            reply = Reply(*await transport.exchange(method, url, headers, body, timeout))
            span.set_attribute("http.response.status_code", reply.status_code)
            return reply

    token = None
    if auth is not None:
        token = await auth.tokens.token(auth.audience)
        headers["Authorization"] = f"Bearer {token}"
    reply = await once()
    if auth is not None and reply.status_code == 401:  # e.g. the issuer's key rotated: one retry, a new token
        renewed = await auth.tokens.token(auth.audience, renew=True, stale=token)
        headers["Authorization"] = f"Bearer {renewed}"
        reply = await once()
    return reply
