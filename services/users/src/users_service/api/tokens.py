from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Form, Response
from fastapi.security import OAuth2PasswordRequestForm

from users_service.core.deps import AccountsDep, ClientAddress, IssuerDep
from users_service.domain.models import ServiceToken, Token

router = APIRouter(tags=["auth"])
# Tokens are credentials: no cache (the browser's, a proxy's) may keep the response (RFC 6749 §5.1).
NO_STORE = {"Cache-Control": "no-store", "Pragma": "no-cache"}


@router.post(
    "/token",
    response_model=Token,
    responses={
        401: {"description": "bad credentials (also for a disabled account)"},
        429: {"description": "too many failed logins for this username or client; see Retry-After"},
    },
)
async def token(
    form: Annotated[OAuth2PasswordRequestForm, Depends()],
    accounts: AccountsDep,
    client: ClientAddress,
    response: Response,
) -> Token:
    response.headers.update(NO_STORE)
    return Token(access_token=await accounts.login(form.username, form.password, client))


@router.post(
    "/internal/token",
    response_model=ServiceToken,
    tags=["internal"],
    responses={401: {"description": "unknown client, wrong secret, or an audience it may not ask for"}},
    description=(
        "Client credentials for the services: a short-lived token for one target service (`audience`), with a "
        "`service` claim naming the caller. Not under a public prefix: only reachable inside the cluster."
    ),
)
async def service_token(
    accounts: AccountsDep,
    issuer: IssuerDep,
    response: Response,
    grant_type: Annotated[str, Form(max_length=64)],
    client_id: Annotated[str, Form(max_length=64)],
    client_secret: Annotated[str, Form(max_length=256)],
    audience: Annotated[str, Form(max_length=64)],
) -> ServiceToken:
    response.headers.update(NO_STORE)
    access_token = accounts.service_token(grant_type, client_id, client_secret, audience)
    return ServiceToken(access_token=access_token, expires_in=issuer.service_ttl_seconds)


@router.get("/.well-known/jwks.json")
async def jwks(issuer: IssuerDep) -> dict[str, Any]:
    return issuer.jwks()
