"""The users API's request and response shapes."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

from pydantic import BaseModel, ConfigDict, EmailStr, Field, SecretStr

# Letters, digits and . _ - only: no whitespace or look-alike tricks in names shown to other people.
Username = Annotated[str, Field(min_length=3, max_length=50, pattern=r"^[A-Za-z0-9._-]+$")]
# The upper bound keeps a single request from making argon2 hash megabytes.
MAX_PASSWORD_LENGTH = 256
Password = Annotated[SecretStr, Field(min_length=8, max_length=MAX_PASSWORD_LENGTH)]


class UserCreate(BaseModel):
    username: Username
    email: EmailStr
    password: Password


class User(BaseModel):
    id: int
    username: str
    email: str
    is_active: bool
    signup_date: datetime


class UserWithRoles(User):
    roles: list[str]


class StoredUser(UserWithRoles):
    password_hash: str


class UserUpdate(BaseModel):
    """What an admin may change on an account: disabling it ends its tokens within a minute."""

    model_config = ConfigDict(extra="forbid")
    is_active: bool


class Token(BaseModel):
    access_token: str
    token_type: str = "bearer"


class ServiceToken(Token):
    expires_in: int
