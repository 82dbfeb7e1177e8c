"""Request dependencies: the Accounts logic and the token issuer live on app.state (built in core/lifespan.py)."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request

from users_service.domain.accounts import Accounts
from users_service.infrastructure.security import TokenIssuer


async def get_accounts(request: Request) -> Accounts:
    return request.app.state.accounts


async def get_issuer(request: Request) -> TokenIssuer:
    return request.app.state.accounts.issuer


async def client_address(request: Request) -> str:
    """The client a login is counted against: the address the nearest proxy (the Ingress, the local gateway)
    appended to X-Forwarded-For, else the peer. Entries before the last one are the client's own claims."""
    forwarded = request.headers.get("x-forwarded-for")
    if forwarded:
        last = forwarded.rsplit(",", 1)[-1].strip()
        if last:
            return last[:64]
    return request.client.host if request.client else "unknown"


AccountsDep = Annotated[Accounts, Depends(get_accounts)]
IssuerDep = Annotated[TokenIssuer, Depends(get_issuer)]
ClientAddress = Annotated[str, Depends(client_address)]
