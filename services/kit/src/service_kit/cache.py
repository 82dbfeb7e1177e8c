"""Redis: the client, a cache of JSON documents that fails open (a Redis outage slows reads, never fails
them), and an in-process near cache in front of it that Redis keeps coherent across replicas."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
import os
import time
from collections.abc import Callable

import redis.asyncio as redis
from cachetools import TTLCache
from redis.exceptions import RedisError

from service_kit import metrics
from service_kit.settings import ServiceSettings

logger = logging.getLogger("service.cache")


def create_redis(settings: ServiceSettings) -> redis.Redis:
    timeout = settings.dependency_timeout_seconds
    return redis.from_url(
        settings.redis_url.get_secret_value(),
        socket_timeout=timeout,
        socket_connect_timeout=timeout,
        decode_responses=True,
        health_check_interval=30,
    )


async def ping(client: redis.Redis, timeout: float) -> None:
    async with asyncio.timeout(timeout):
        await client.ping()


_ERRORS = (RedisError, OSError, TimeoutError)


async def _push_as_reply(response):
    return response


class NearCache:
    """An in-process copy of the Redis entries under `<prefix>:` this process has read, invalidated by Redis
    itself: server-assisted client-side caching (`CLIENT TRACKING ON BCAST PREFIX <prefix>:` on a dedicated
    RESP3 connection). Redis pushes the name of every key under the prefix that anyone changes, deletes,
    expires or evicts (and a flush), so a write through any replica, or straight into Redis, reaches every
    replica's copy within one push.

    Staleness is bounded: while the tracking connection is up, by the push's delivery (sub-millisecond on
    loopback); when it drops (Redis restarted, connection killed), the copy is cleared and bypassed until
    tracking is back; and every entry expires `ttl_seconds` after it was filled, which bounds what a
    connection that fails without being noticed (no RST) could serve. Copies are filled only from a Redis read
    that began while tracking was up and no invalidation arrived in between, so a push that overtakes a
    read's reply can't leave an old value behind.
    """

    def __init__(
        self,
        client: redis.Redis,
        prefix: str,
        ttl_seconds: float,
        max_entries: int = 10_000,
        retry_seconds: float = 1.0,
    ) -> None:
        self.client = client
        self.prefix = f"{prefix}:"
        self.ttl_seconds = ttl_seconds
        self.retry_seconds = retry_seconds
        self._entries: TTLCache[str, str] = TTLCache(max_entries, ttl_seconds)
        self._live = False  # tracking is on: entries may be filled and served
        self._epoch = 0  # bumped on every invalidation; a fill that began before one is dropped
        self._task: asyncio.Task | None = None
        self._connection = None

    @property
    def client_name(self) -> str:
        """The tracking connection's name in `CLIENT LIST`."""
        return f"near-cache:{self.prefix}{os.getpid()}"

    @property
    def live(self) -> bool:
        return self._live

    def get(self, key: str) -> str | None:
        return self._entries.get(key) if self._live else None

    def fill_token(self) -> int | None:
        """Taken before the Redis read whose answer may fill the copy (None: it may not)."""
        return self._epoch if self._live else None

    def fill(self, key: str, text: str, token: int | None) -> None:
        if token is not None and token == self._epoch and self._live:
            self._entries[key] = text

    def invalidate(self, keys: list[str] | None) -> None:
        """Drop `keys` (None: everything)."""
        self._epoch += 1
        if keys is None:
            self._entries.clear()
            return
        for key in keys:
            self._entries.pop(key, None)

    async def __aenter__(self) -> NearCache:
        self._task = asyncio.create_task(self._track(), name=f"near-cache {self.prefix}")
        return self

    async def __aexit__(self, *exc_info) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        await self._disconnect()

    async def _track(self) -> None:
        """Keeps a tracking connection up for as long as the process runs; Redis down means no copy, not an
        error (reads go to Redis and, failing that, to the database)."""
        failing = False
        while True:
            try:
                await self._connect()
                if failing:
                    logger.info("near cache tracking again", extra={"prefix": self.prefix})
                    failing = False
                await self._listen()
            except Exception as exc:  # noqa: BLE001 - any failure means: no copy until tracking is back
                if not failing:
                    logger.warning(
                        "near cache off: no tracking connection",
                        extra={"prefix": self.prefix, "error": type(exc).__name__},
                    )
                    failing = True
            finally:
                self._live = False
                self.invalidate(None)
                await self._disconnect()
            await asyncio.sleep(self.retry_seconds)

    async def _connect(self) -> None:
        pool = self.client.connection_pool
        # RESP3 so the invalidations arrive as push messages on this very connection (no REDIRECT).
        connection = pool.connection_class(
            **{**pool.connection_kwargs, "protocol": 3, "client_name": self.client_name}
        )
        self._connection = connection
        await connection.connect()
        # redis-py hands invalidation pushes to a handler of the parser; this one returns them to the reader.
        connection._parser.set_invalidation_push_handler(_push_as_reply)
        await connection.send_command("CLIENT", "TRACKING", "ON", "BCAST", "PREFIX", self.prefix)
        reply = await connection.read_response()
        if reply not in ("OK", b"OK"):
            raise RedisError(f"CLIENT TRACKING answered {reply!r}")
        self._live = True

    async def _listen(self) -> None:
        connection = self._connection
        while True:
            push = await connection.read_response(timeout=math.inf, push_request=True)
            if isinstance(push, list) and len(push) == 2 and push[0] in ("invalidate", b"invalidate"):
                keys = push[1]
                self.invalidate(None if keys is None else [_text(k) for k in keys])

    async def _disconnect(self) -> None:
        connection, self._connection = self._connection, None
        if connection is not None:
            with contextlib.suppress(*_ERRORS):
                await connection.disconnect()


def _text(key: str | bytes) -> str:
    return key.decode() if isinstance(key, bytes) else key


class JsonCache:
    """JSON documents under `<prefix>:<key>` with a TTL, kept as text: the caller serialises and checks them with
    its own models, and a hot path can answer with the text as it is.

    After a Redis error the cache stays out of the way for `backoff_seconds`, so an outage costs one timeout
    per backoff window instead of one per request. `accept` (the caller's check of an entry, e.g. "exactly what
    a miss would store now") turns any other entry into a miss. With a `near` cache, a read first looks in this
    process's copy (see `NearCache` for how it is kept coherent) and an accepted Redis hit fills it, so the
    check runs once per entry per process, not per read.
    """

    def __init__(
        self,
        client: redis.Redis,
        prefix: str,
        ttl_seconds: int,
        backoff_seconds: float = 1.0,
        near: NearCache | None = None,
        accept: Callable[[str], bool] | None = None,
    ) -> None:
        self.client = client
        self.prefix = prefix
        self.ttl_seconds = ttl_seconds
        self.backoff_seconds = backoff_seconds
        self.near = near
        self.accept = accept
        self._skip_until = 0.0
        self._reads = {r: metrics.CACHE_REQUESTS.labels(prefix, r) for r in ("hit", "miss", "error")}

    def _key(self, key: str | int) -> str:
        return f"{self.prefix}:{key}"

    def _available(self) -> bool:
        return time.monotonic() >= self._skip_until

    def _failed(self, op: str, exc: BaseException) -> None:
        self._skip_until = time.monotonic() + self.backoff_seconds
        logger.warning("cache unavailable, failing open", extra={"op": op, "error": type(exc).__name__})

    async def get_text(self, key: str | int) -> str | None:
        """The stored JSON document as text, unparsed (a hot path can answer with it as it is)."""
        name = self._key(key)
        near = self.near
        token = None
        if near is not None:
            text = near.get(name)
            if text is not None:
                self._count("hit")
                return text
            token = near.fill_token()
        if not self._available():
            self._count("error")  # skipped during the backoff after an error: the read went to the database
            return None
        try:
            text = await self.client.get(name)
        except _ERRORS as exc:
            self._failed("get", exc)
            self._count("error")
            return None
        if text is not None and self.accept is not None and not self.accept(text):
            text = None  # unreadable or out of date: the caller's miss rewrites it
        self._count("miss" if text is None else "hit")
        if text is not None and near is not None:
            near.fill(name, text, token)
        return text

    def _count(self, result: str) -> None:
        if metrics.enabled():
            self._reads[result].inc()

    async def set_text(self, key: str | int, document: str) -> None:
        """Store an already-serialised JSON document."""
        if not self._available():
            return
        try:
            await self.client.set(self._key(key), document, ex=self.ttl_seconds)
        except _ERRORS as exc:
            self._failed("set", exc)

    async def delete(self, key: str | int) -> bool:
        """Invalidate; returns False when Redis could not be reached (the TTL bounds staleness then). This
        process's near copy goes at once (its own next read sees the write); other replicas' by Redis's push."""
        if self.near is not None:
            self.near.invalidate([self._key(key)])
        try:
            await self.client.delete(self._key(key))
            return True
        except _ERRORS as exc:
            self._failed("delete", exc)
            return False
