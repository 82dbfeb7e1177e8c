"""Bearer-token verification for every service.

Tokens are RS256 JWTs signed by the users service. Verifiers use a configured public key when given, otherwise
the users service's JWKS, fetched once and cached. Only RS256 is ever accepted (explicit `algorithms`), which
shuts out `alg: none` and HS256-signed-with-the-public-key tokens.

Two kinds of token, told apart by the `service` claim and the audience:
- an end user's (POST /token): audience JWT_AUDIENCE, no `service` claim. Still-active is checked too: a
  disabled or deleted user's token stops working within the setting `ACTIVE_CHECK_SECONDS` (1–60 s).
- a service's (POST /internal/token, client credentials): audience = the one service it is for (this service's
  SERVICE_NAME), `service` = the caller's name. Internal endpoints take only these (`CallingService`: 403 for an
  end user's token); a call on behalf of a user carries the user's own token in `X-Acting-User`, verified like
  any user token (`ActingUser`).
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Annotated, Any
from urllib.parse import urlsplit

import httpx
from cachetools import TTLCache
from fastapi import Depends, Header, HTTPException, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from jose import jwk, jwt
from jose.backends.base import Key
from jose.exceptions import JOSEError
from pydantic import Field, SecretStr
from starlette.exceptions import HTTPException as StarletteHTTPException

from service_kit.errors import unauthorized
from service_kit.settings import ServiceSettings

ALGORITHMS = ["RS256"]
ADMIN_ROLE = "admin"
SERVICE_CLAIM = "service"
ACTING_USER_HEADER = "X-Acting-User"
_REQUIRED_CLAIMS = ("iss", "aud", "sub", "exp", "iat", "jti")
# How long a service trusts the issuer's "this user is active" answer by default (the setting
# ACTIVE_CHECK_SECONDS). With the issuer checking its own database on every request, a disabled or deleted user
# loses access everywhere within this many seconds.
ACTIVE_CHECK_SECONDS = 30
# The issuer's endpoint that answers for a user's own token (401 once the user is disabled or gone).
USER_STATUS_PATH = "/users/me/"

logger = logging.getLogger("service.auth")
ActiveCheck = Callable[["Principal"], Awaitable[bool]]


@dataclass(frozen=True)
class Principal:
    user_id: str
    username: str | None
    roles: tuple[str, ...] = ()
    token: str = field(default="", repr=False)

    @property
    def is_admin(self) -> bool:
        return ADMIN_ROLE in self.roles


@dataclass(frozen=True)
class ServiceCaller:
    """Another service, authenticated by its own client-credentials token."""

    name: str


class IssuerActiveCheck:
    """Asks the issuer whether a token's user is still active, with the answer kept `ttl` seconds per user.

    Fails open: when the issuer cannot be asked (down, slow), a token whose signature holds is accepted and the
    answer is not cached, so the check resumes as soon as the issuer is back.
    """

    def __init__(self, http: httpx.AsyncClient, status_url: str, ttl: float = ACTIVE_CHECK_SECONDS) -> None:
        self.http = http
        self.status_url = status_url
        self._answers: TTLCache[str, bool] = TTLCache(maxsize=10_000, ttl=ttl)

    @classmethod
    def from_jwks_url(
        cls, http: httpx.AsyncClient, jwks_url: str, ttl: float = ACTIVE_CHECK_SECONDS
    ) -> IssuerActiveCheck:
        parts = urlsplit(jwks_url)
        return cls(http, f"{parts.scheme}://{parts.netloc}{USER_STATUS_PATH}", ttl)

    async def __call__(self, principal: Principal) -> bool:
        known = self._answers.get(principal.user_id)
        if known is not None:
            return known
        try:
            response = await self.http.get(
                self.status_url, headers={"Authorization": f"Bearer {principal.token}"}, timeout=2.0
            )
        except httpx.HTTPError as exc:
            logger.warning("user status unavailable, failing open", extra={"error": type(exc).__name__})
            return True
        if response.status_code == 401:
            active = False
        elif response.status_code == 200:
            try:
                active = response.json().get("is_active")
            except (ValueError, AttributeError):
                active = None
            if not isinstance(active, bool):  # not the issuer's answer: fail open, as for an outage
                logger.warning("user status unreadable, failing open")
                return True
        else:
            logger.warning("user status unavailable, failing open", extra={"status": response.status_code})
            return True
        self._answers[principal.user_id] = active
        return active


def _audiences(claims: dict[str, Any]) -> list[str]:
    aud = claims.get("aud")
    if isinstance(aud, str):
        return [aud]
    if isinstance(aud, list) and all(isinstance(a, str) for a in aud):
        return aud
    return []


class TokenVerifier:
    def __init__(
        self,
        settings: ServiceSettings,
        http: httpx.AsyncClient | None = None,
        public_key: str | None = None,
        active_check: ActiveCheck | None = None,
    ) -> None:
        self.issuer = settings.jwt_issuer
        self.audience = settings.jwt_audience
        self.service_name = settings.service_name
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
        if active_check is None and http is not None and self.jwks_url:
            active_check = IssuerActiveCheck.from_jwks_url(http, self.jwks_url, settings.active_check_seconds)
        self.active_check = active_check
        # Tokens whose signature and claims were verified, by their exact text: a customer's orders and a calling
        # service's requests carry the same token again and again, and the RS256 check (python-jose, then the
        # claims) was ~10% of orders' and payments' CPU per order. Kept ACTIVE_CHECK_SECONDS at most (and never
        # past the token's `exp`), and dropped whenever the key set changes (a rotation); what depends on the
        # request (audience, kind of token, the user still active) is still checked every time.
        self._verified: TTLCache[str, dict[str, Any]] = TTLCache(
            maxsize=4096, ttl=settings.active_check_seconds
        )

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
            self._verified.clear()  # and what was verified with them
        if not isinstance(kid, str) or not kid:
            return jwks  # no usable key id in the token: let python-jose try the whole set, as before
        if kid not in self._jwk_objects:
            matching = [k for k in jwks.get("keys", []) if isinstance(k, dict) and k.get("kid") == kid]
            if len(matching) != 1:
                return jwks
            self._jwk_objects[kid] = jwk.construct(matching[0], ALGORITHMS[0])
        return self._jwk_objects[kid]

    async def claims(self, token: str) -> dict[str, Any]:
        """The claims of a token signed by the issuer, unexpired, with every required claim; the audience is
        checked by `verify` and `verify_service`, which know which one each kind of token must carry."""
        known = self._verified.get(token)
        if known is not None and known["exp"] > time.time():
            return known
        try:
            key = await self._key_for(token)
            claims = jwt.decode(
                token,
                key,
                algorithms=ALGORITHMS,
                issuer=self.issuer,
                # `aud` is required too, but checked below: python-jose's require_aud would force its own check.
                options={"verify_aud": False}
                | {f"require_{c}": True for c in _REQUIRED_CLAIMS if c != "aud"},
            )
        except JOSEError as exc:
            raise unauthorized("invalid token") from exc
        if not isinstance(claims.get("sub"), str) or not _audiences(claims):
            raise unauthorized("invalid token")
        if isinstance(claims["exp"], int | float):
            self._verified[token] = claims
        return claims

    @staticmethod
    def is_service_token(claims: dict[str, Any]) -> bool:
        return SERVICE_CLAIM in claims

    async def verify(self, token: str) -> Principal:
        """An end user's token (never a service's), whose user is still active."""
        return await self.user_principal(await self.claims(token), token)

    async def user_principal(self, claims: dict[str, Any], token: str) -> Principal:
        if self.is_service_token(claims) or self.audience not in _audiences(claims):
            raise unauthorized("invalid token")
        roles = claims.get("roles") or []
        if not isinstance(roles, list) or not all(isinstance(r, str) for r in roles):
            raise unauthorized("invalid token")
        principal = Principal(
            user_id=str(claims["sub"]), username=claims.get("username"), roles=tuple(roles), token=token
        )
        if self.active_check is not None and not await self.active_check(principal):
            raise unauthorized("invalid token")
        return principal

    async def verify_service(self, token: str) -> ServiceCaller:
        """A service's token for this service: 403 for an end user's valid token, 401 for anything else."""
        claims = await self.claims(token)
        if not self.is_service_token(claims):
            if self.audience in _audiences(claims):
                raise HTTPException(403, "service identity required")
            raise unauthorized("invalid token")
        service = claims[SERVICE_CLAIM]
        if not isinstance(service, str) or not service or self.service_name not in _audiences(claims):
            raise unauthorized("invalid token")
        return ServiceCaller(service)


_bearer = HTTPBearer(auto_error=False, description="RS256 access token from POST /token on the users service")


async def bearer_token(
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
) -> str:
    if credentials is None or credentials.scheme.lower() != "bearer" or not credentials.credentials.strip():
        raise unauthorized()
    return credentials.credentials


BearerToken = Annotated[str, Depends(bearer_token)]


async def current_principal(request: Request, token: BearerToken) -> Principal:
    """An end user (their token; still active)."""
    return await request.app.state.verifier.verify(token)


CurrentPrincipal = Annotated[Principal, Depends(current_principal)]


async def calling_service(request: Request, token: BearerToken) -> ServiceCaller:
    """Another service (its own service token for this one): internal routes only."""
    return await request.app.state.verifier.verify_service(token)


CallingService = Annotated[ServiceCaller, Depends(calling_service)]


_ACTING_USER_MAX_LENGTH = 8192


def valid_acting_user(value: str) -> bool:
    """Whether `value` passes the header's validation below (for plain routes, service_kit.routes)."""
    return 1 <= len(value) <= _ACTING_USER_MAX_LENGTH


# The acting user's token as a body field (a batch item carries its own, service_kit.batch); secret in reprs.
ActingUserToken = Annotated[SecretStr, Field(min_length=1, max_length=_ACTING_USER_MAX_LENGTH)]


async def acting_user(
    request: Request,
    _: CallingService,
    token: Annotated[
        str,
        Header(
            alias=ACTING_USER_HEADER,
            min_length=1,
            max_length=_ACTING_USER_MAX_LENGTH,
            description="The end user's own access token, for a call a service makes on that user's behalf.",
        ),
    ],
) -> Principal:
    """The user a calling service acts for: their own token, verified like any user token (an unverified
    user id from the caller would let a compromised service act as anyone)."""
    verifier: TokenVerifier = request.app.state.verifier
    try:
        return await verifier.verify(token)
    except StarletteHTTPException as exc:
        raise HTTPException(403, f"{ACTING_USER_HEADER}: {exc.detail}") from None


ActingUser = Annotated[Principal, Depends(acting_user)]


async def admin_principal(principal: CurrentPrincipal) -> Principal:
    if not principal.is_admin:
        raise HTTPException(403, "admin role required")
    return principal


AdminPrincipal = Annotated[Principal, Depends(admin_principal)]
