"""Service identity, the calling side: client-credentials tokens from the issuer, one per target service.

A service that calls others (its settings are `CallerSettings`) proves itself to the issuer (users,
`POST /internal/token`) with its own client secret and gets a short-lived token for one audience (the target
service's name) with a `service` claim naming itself. Tokens are cached until shortly before they expire and
fetched again then, or at once when a target answers 401 (e.g. the issuer's key was rotated). The verifying side
is service_kit.auth (`CallingService`).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncGenerator

import httpx
from pydantic import SecretStr

from service_kit.settings import CallerSettings

GRANT_TYPE = "client_credentials"
# Fetch a new token this long before the cached one expires, so no call goes out with a token about to lapse.
REFRESH_MARGIN_SECONDS = 30.0


class ServiceTokenError(httpx.TransportError):
    """No service token could be had (the issuer is down, or refused this service's credentials)."""


class ServiceTokens:
    def __init__(
        self, http: httpx.AsyncClient, token_url: str, client_id: str, client_secret: SecretStr
    ) -> None:
        self.http = http
        self.token_url = token_url
        self.client_id = client_id
        self._secret = client_secret
        self._tokens: dict[str, tuple[str, float]] = {}  # audience → (token, renew after, monotonic)
        self._locks: dict[str, asyncio.Lock] = {}

    @classmethod
    def from_settings(cls, settings: CallerSettings, http: httpx.AsyncClient) -> ServiceTokens:
        return cls(http, settings.service_token_url, settings.service_name, settings.service_client_secret)

    async def token(self, audience: str, *, renew: bool = False, stale: str | None = None) -> str:
        """A valid token for `audience`. `renew` forces a new one unless another call already replaced
        `stale` (the token that was refused) meanwhile."""
        lock = self._locks.setdefault(audience, asyncio.Lock())
        async with lock:
            cached = self._tokens.get(audience)
            if cached is not None:
                token, renew_after = cached
                fresh = time.monotonic() < renew_after
                if fresh and (not renew or token != stale):
                    return token
            token, lifetime = await self._fetch(audience)
            self._tokens[audience] = (token, time.monotonic() + max(lifetime - REFRESH_MARGIN_SECONDS, 1.0))
            return token

    async def _fetch(self, audience: str) -> tuple[str, float]:
        request = self.http.build_request(
            "POST",
            self.token_url,
            data={
                "grant_type": GRANT_TYPE,
                "client_id": self.client_id,
                "client_secret": self._secret.get_secret_value(),
                "audience": audience,
            },
            timeout=3.0,
        )
        try:
            response = await self.http.send(request)
        except httpx.HTTPError as exc:
            raise ServiceTokenError(
                f"token issuer unreachable: {type(exc).__name__}", request=request
            ) from exc
        if response.status_code != 200:
            raise ServiceTokenError(
                f"token issuer refused a token for {audience} ({response.status_code})", request=request
            )
        try:
            body = response.json()
            return str(body["access_token"]), float(body["expires_in"])
        except (ValueError, KeyError, TypeError) as exc:
            raise ServiceTokenError("token issuer sent an unreadable token", request=request) from exc

    def auth(self, audience: str) -> ServiceAuth:
        return ServiceAuth(self, audience)


class ServiceAuth(httpx.Auth):
    """httpx auth: this service's token for `audience`; a 401 gets one retry with a new token."""

    def __init__(self, tokens: ServiceTokens, audience: str) -> None:
        self.tokens = tokens
        self.audience = audience

    async def async_auth_flow(self, request: httpx.Request) -> AsyncGenerator[httpx.Request, httpx.Response]:
        token = await self.tokens.token(self.audience)
        request.headers["Authorization"] = f"Bearer {token}"
        response = yield request
        if response.status_code == 401:
            renewed = await self.tokens.token(self.audience, renew=True, stale=token)
            request.headers["Authorization"] = f"Bearer {renewed}"
            yield request
