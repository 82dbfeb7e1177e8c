from __future__ import annotations

from fastapi import APIRouter, HTTPException, status

from service_kit.auth import CurrentPrincipal
from service_kit.errors import unauthorized
from users_service.core.deps import AccountsDep
from users_service.domain.errors import DuplicateUser
from users_service.domain.models import User, UserCreate, UserWithRoles

router = APIRouter(tags=["users"])


@router.post(
    "/users/",
    status_code=status.HTTP_201_CREATED,
    response_model=User,
    responses={409: {"description": "username or email already registered"}},
)
async def register(data: UserCreate, accounts: AccountsDep) -> User:
    try:
        return User(**(await accounts.register(data)).model_dump())
    except DuplicateUser as exc:
        raise HTTPException(status.HTTP_409_CONFLICT, str(exc)) from None


@router.get("/users/me/", response_model=UserWithRoles)
async def me(principal: CurrentPrincipal, accounts: AccountsDep) -> UserWithRoles:
    user = await accounts.by_subject(principal.user_id)
    if user is None:
        raise unauthorized("user no longer exists")
    return UserWithRoles(**user.model_dump())
