"""Redis: the client, and a cache of JSON documents that fails open (a Redis outage slows reads, never fails
them)."""

from __future__ import annotations

import asyncio
import logging
import time

import redis.asyncio as redis
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


class JsonCache:
    """JSON documents under `<prefix>:<key>` with a TTL, kept as text: the caller serialises and checks them with
    its own models, and a hot path can answer with the text as it is.

    After a Redis error the cache stays out of the way for `backoff_seconds`, so an outage costs one timeout
    per backoff window instead of one per request.
    """

    def __init__(
        self, client: redis.Redis, prefix: str, ttl_seconds: int, backoff_seconds: float = 1.0
    ) -> None:
        self.client = client
        self.prefix = prefix
        self.ttl_seconds = ttl_seconds
        self.backoff_seconds = backoff_seconds
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
        if not self._available():
            self._count("error")  # skipped during the backoff after an error: the read went to the database
            return None
        try:
            text = await self.client.get(self._key(key))
        except (RedisError, OSError, TimeoutError) as exc:
            self._failed("get", exc)
            self._count("error")
            return None
        self._count("miss" if text is None else "hit")
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
        except (RedisError, OSError, TimeoutError) as exc:
            self._failed("set", exc)

    async def delete(self, key: str | int) -> bool:
        """Invalidate; returns False when Redis could not be reached (the TTL bounds staleness then)."""
        try:
            await self.client.delete(self._key(key))
            return True
        except (RedisError, OSError, TimeoutError) as exc:
            self._failed("delete", exc)
            return False
