"""Bearer-token verification for every service.

Tokens are RS256 JWTs signed by the users service. Verifiers use a configured public key when given, otherwise
the users service's JWKS, fetched once and cached. Only RS256 is ever accepted (explicit `algorithms`), which
shuts out `alg: none` and HS256-signed-with-the-public-key tokens.
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass, field
from typing import Annotated, Any

import httpx
from fastapi import Depends, HTTPException, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from jose import jwk, jwt
from jose.backends.base import Key
from jose.exceptions import JOSEError

from service_kit.errors import unauthorized
from service_kit.settings import ServiceSettings

ALGORITHMS = ["RS256"]
ADMIN_ROLE = "admin"
_REQUIRED_CLAIMS = ("iss", "aud", "sub", "exp", "iat", "jti")


@dataclass(frozen=True)
class Principal:
    user_id: str
    username: str | None
    roles: tuple[str, ...] = ()
    token: str = field(default="", repr=False)

    @property
    def is_admin(self) -> bool:
        return ADMIN_ROLE in self.roles


class TokenVerifier:
    def __init__(
        self, settings: ServiceSettings, http: httpx.AsyncClient | None = None, public_key: str | None = None
    ) -> None:
        self.issuer = settings.jwt_issuer
        self.audience = settings.jwt_audience
        self.public_key = public_key or settings.jwt_public_key
        self.jwks_url = settings.jwt_jwks_url
        self.cache_seconds = settings.jwks_cache_seconds
        self.http = http
        self._jwks: dict[str, Any] | None = None
        self._jwks_fetched_at = 0.0
        self._lock = asyncio.Lock()
        # Keys built once, not per request: given a PEM or a JWK set, python-jose parses and constructs the key on
        # every decode (a JSON parse attempt, base64 and big-int work: about half its verification cost).
        self._public_key_object: Key | None = None
        self._jwk_objects: dict[str, Key] = {}
        self._jwk_objects_from: dict[str, Any] | None = None
        if not self.public_key and not self.jwks_url:
            raise ValueError("set JWT_PUBLIC_KEY or JWT_JWKS_URL so tokens can be verified")

    async def _jwks_keys(self, kid: str | None, refresh: bool = False) -> dict[str, Any]:
        async with self._lock:
            stale = time.monotonic() - self._jwks_fetched_at > self.cache_seconds
            # An unknown kid may mean the issuer rotated keys: refetch, but at most every 10 s.
            unknown_kid = (
                kid is not None
                and self._jwks is not None
                and not any(k.get("kid") == kid for k in self._jwks.get("keys", []))
            )
            recently = time.monotonic() - self._jwks_fetched_at < 10
            if self._jwks is None or stale or (unknown_kid and not recently) or (refresh and not recently):
                if self.http is None:
                    raise unauthorized("token verification unavailable")
                try:
                    response = await self.http.get(self.jwks_url, timeout=3.0)
                    response.raise_for_status()
                    self._jwks = response.json()
                    self._jwks_fetched_at = time.monotonic()
                except (httpx.HTTPError, ValueError) as exc:
                    if self._jwks is None:
                        raise HTTPException(503, "token issuer unavailable") from exc
            return self._jwks

    async def _key_for(self, token: str) -> Any:
        if self.public_key:
            if self._public_key_object is None:
                self._public_key_object = jwk.construct(self.public_key, ALGORITHMS[0])
            return self._public_key_object
        kid = jwt.get_unverified_header(token).get("kid")
        jwks = await self._jwks_keys(kid)
        if jwks is not self._jwk_objects_from:  # fetched anew: forget the keys built from the old set
            self._jwk_objects, self._jwk_objects_from = {}, jwks
        if not isinstance(kid, str) or not kid:
            return jwks  # no usable key id in the token: let python-jose try the whole set, as before
        if kid not in self._jwk_objects:
            matching = [k for k in jwks.get("keys", []) if isinstance(k, dict) and k.get("kid") == kid]
            if len(matching) != 1:
                return jwks
            self._jwk_objects[kid] = jwk.construct(matching[0], ALGORITHMS[0])
        return self._jwk_objects[kid]

    async def verify(self, token: str) -> Principal:
        try:
            key = await self._key_for(token)
            claims = jwt.decode(
                token,
                key,
                algorithms=ALGORITHMS,
                audience=self.audience,
                issuer=self.issuer,
                options={f"require_{c}": True for c in _REQUIRED_CLAIMS},
            )
        except JOSEError as exc:
            raise unauthorized("invalid token") from exc
        roles = claims.get("roles") or []
        if not isinstance(roles, list) or not all(isinstance(r, str) for r in roles):
            raise unauthorized("invalid token")
        return Principal(
            user_id=str(claims["sub"]), username=claims.get("username"), roles=tuple(roles), token=token
        )


_bearer = HTTPBearer(auto_error=False, description="RS256 access token from POST /token on the users service")


async def current_principal(
    request: Request, credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)]
) -> Principal:
    if credentials is None or credentials.scheme.lower() != "bearer" or not credentials.credentials:
        raise unauthorized()
    verifier: TokenVerifier = request.app.state.verifier
    return await verifier.verify(credentials.credentials)


CurrentPrincipal = Annotated[Principal, Depends(current_principal)]


async def admin_principal(principal: CurrentPrincipal) -> Principal:
    if not principal.is_admin:
        raise HTTPException(403, "admin role required")
    return principal


AdminPrincipal = Annotated[Principal, Depends(admin_principal)]
