"""Redis: the client, and a JSON cache that fails open (a Redis outage slows reads, never fails them)."""

from __future__ import annotations

import asyncio
import json
import logging
import time
from typing import Any

import redis.asyncio as redis
from redis.exceptions import RedisError

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
    """JSON values under `<prefix>:<key>` with a TTL.

    After a Redis error the cache stays out of the way for `backoff_seconds`, so an outage costs one timeout
    per backoff window instead of one per request.
    """

    def __init__(self, client: redis.Redis, prefix: str, ttl_seconds: int, backoff_seconds: float = 1.0) -> None:
        self.client = client
        self.prefix = prefix
        self.ttl_seconds = ttl_seconds
        self.backoff_seconds = backoff_seconds
        self._skip_until = 0.0

    def _key(self, key: str | int) -> str:
        return f"{self.prefix}:{key}"

    def _available(self) -> bool:
        return time.monotonic() >= self._skip_until

    def _failed(self, op: str, exc: BaseException) -> None:
        self._skip_until = time.monotonic() + self.backoff_seconds
        logger.warning("cache unavailable, failing open", extra={"op": op, "error": type(exc).__name__})

    async def get(self, key: str | int) -> Any | None:
        if not self._available():
            return None
        try:
            raw = await self.client.get(self._key(key))
        except (RedisError, OSError, TimeoutError) as exc:
            self._failed("get", exc)
            return None
        return None if raw is None else json.loads(raw)

    async def set(self, key: str | int, value: Any) -> None:
        if not self._available():
            return
        try:
            await self.client.set(self._key(key), json.dumps(value, default=str), ex=self.ttl_seconds)
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
