from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path, status

from service_kit.auth import AdminPrincipal, CurrentPrincipal
from users_service.core.deps import AccountsDep
from users_service.domain.models import User, UserCreate, UserUpdate, UserWithRoles

router = APIRouter(tags=["users"])
UserIdPath = Annotated[int, Path(ge=1, le=2**63 - 1)]
NOT_FOUND = {404: {"description": "user not found"}, 409: {"description": "the admin's own account"}}


@router.post(
    "/users/",
    status_code=status.HTTP_201_CREATED,
    response_model=User,
    responses={409: {"description": "username or email already registered"}},
)
async def register(data: UserCreate, accounts: AccountsDep) -> User:
    return User(**(await accounts.register(data)).model_dump())


@router.get("/users/me/", response_model=UserWithRoles)
async def me(principal: CurrentPrincipal, accounts: AccountsDep) -> UserWithRoles:
    return UserWithRoles(**(await accounts.profile(principal)).model_dump())


@router.patch("/users/{user_id}", response_model=UserWithRoles, responses=NOT_FOUND)
async def update_user(
    user_id: UserIdPath, data: UserUpdate, admin: AdminPrincipal, accounts: AccountsDep
) -> UserWithRoles:
    """Admin: enable or disable an account. A disabled user's tokens stop working everywhere within 60 s."""
    return UserWithRoles(**(await accounts.set_active(admin, user_id, data.is_active)).model_dump())


@router.delete("/users/{user_id}", status_code=status.HTTP_204_NO_CONTENT, responses=NOT_FOUND)
async def delete_user(user_id: UserIdPath, admin: AdminPrincipal, accounts: AccountsDep) -> None:
    """Admin: delete an account; its tokens stop working everywhere within 60 s."""
    await accounts.delete(admin, user_id)
