"""Request dependencies: the Accounts logic and the token issuer live on app.state (built in the lifespan)."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request

from users_service.core.security import TokenIssuer
from users_service.domain.accounts import Accounts


async def get_accounts(request: Request) -> Accounts:
    return request.app.state.accounts


async def get_issuer(request: Request) -> TokenIssuer:
    return request.app.state.accounts.issuer


AccountsDep = Annotated[Accounts, Depends(get_accounts)]
IssuerDep = Annotated[TokenIssuer, Depends(get_issuer)]
