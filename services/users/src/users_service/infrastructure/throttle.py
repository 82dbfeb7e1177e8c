"""Login throttling: failed logins counted in Redis per username and per client address (the `limits` library's
fixed windows, over redis-py's asyncio client), so every replica sees the same counts.

Checked before the password is verified, so a throttled guess costs no argon2 work. Fails open: when Redis
cannot be reached, logins go on unthrottled (an outage must not lock everyone out) and Redis is left alone for
`backoff_seconds` so the outage costs one timeout per window, not one per login.
"""

from __future__ import annotations

import logging
import math
import time

from limits import RateLimitItem, parse
from limits.aio.storage import RedisStorage
from limits.aio.strategies import FixedWindowRateLimiter
from redis.exceptions import RedisError

from users_service.settings import UsersSettings

logger = logging.getLogger("users.throttle")
_UNAVAILABLE = (RedisError, OSError, TimeoutError)


def _limits_uri(redis_url: str) -> str:
    """REDIS_URL in limits' notation: `async+redis://…`, and a unix socket as `async+redis+unix://…` (a bare
    `unix://` would make limits pick its valkey client)."""
    if redis_url.startswith("unix://"):
        return "async+redis+" + redis_url
    return "async+" + redis_url


class LoginThrottle:
    def __init__(self, settings: UsersSettings, backoff_seconds: float = 1.0) -> None:
        timeout = settings.dependency_timeout_seconds
        self.storage = RedisStorage(
            _limits_uri(settings.redis_url.get_secret_value()),
            implementation="redispy",
            socket_timeout=timeout,
            socket_connect_timeout=timeout,
        )
        self.limiter = FixedWindowRateLimiter(self.storage)
        self.per_username: RateLimitItem = parse(settings.login_username_limit)
        self.per_client: RateLimitItem = parse(settings.login_client_limit)
        self.backoff_seconds = backoff_seconds
        self._skip_until = 0.0

    def _keys(self, username: str, client: str) -> tuple[tuple[RateLimitItem, str, str], ...]:
        return (
            (self.per_username, "login-user", username.lower()),
            (self.per_client, "login-client", client),
        )

    async def retry_after(self, username: str, client: str) -> int | None:
        """Seconds until a login may be tried again, or None when it may be tried now."""
        if time.monotonic() < self._skip_until:
            return None
        try:
            for item, kind, key in self._keys(username, client):
                if not await self.limiter.test(item, kind, key):
                    stats = await self.limiter.get_window_stats(item, kind, key)
                    return max(1, math.ceil(stats.reset_time - time.time()))
        except _UNAVAILABLE as exc:
            self._failed(exc)
        return None

    async def failed(self, username: str, client: str) -> None:
        if time.monotonic() < self._skip_until:
            return
        try:
            for item, kind, key in self._keys(username, client):
                await self.limiter.hit(item, kind, key)
        except _UNAVAILABLE as exc:
            self._failed(exc)

    async def succeeded(self, username: str) -> None:
        """A right password clears the username's count (its failures were the owner's typos)."""
        if time.monotonic() < self._skip_until:
            return
        try:
            await self.limiter.clear(self.per_username, "login-user", username.lower())
        except _UNAVAILABLE as exc:
            self._failed(exc)

    def _failed(self, exc: BaseException) -> None:
        self._skip_until = time.monotonic() + self.backoff_seconds
        logger.warning("login throttle unavailable, failing open", extra={"error": type(exc).__name__})
