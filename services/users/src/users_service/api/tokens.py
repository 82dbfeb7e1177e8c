from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, HTTPException, status
from fastapi.security import OAuth2PasswordRequestForm

from service_kit.errors import unauthorized
from users_service.core.deps import AccountsDep, IssuerDep
from users_service.domain.errors import InactiveUser, InvalidCredentials
from users_service.domain.models import Token

router = APIRouter(tags=["auth"])


@router.post("/token", response_model=Token, responses={401: {"description": "bad credentials"}})
async def token(form: Annotated[OAuth2PasswordRequestForm, Depends()], accounts: AccountsDep) -> Token:
    try:
        return Token(access_token=await accounts.login(form.username, form.password))
    except InvalidCredentials:
        raise unauthorized("incorrect username or password") from None
    except InactiveUser:
        raise HTTPException(status.HTTP_400_BAD_REQUEST, "inactive user") from None


@router.get("/.well-known/jwks.json")
async def jwks(issuer: IssuerDep) -> dict[str, Any]:
    return issuer.jwks()
