"""Users in Postgres (asyncpg, parametrized SQL only)."""

from __future__ import annotations

from collections.abc import Sequence

import asyncpg

from service_kit.records import Repository
from users_service.domain.errors import DuplicateUser
from users_service.domain.models import StoredUser

# Which unique index names which field (see migrations/0001_users.sql).
_CONSTRAINT_FIELDS = {"users_username_key": "username", "users_email_key": "email"}

_INSERT = """
INSERT INTO users (username, email, password_hash, roles) VALUES ($1, $2, $3, $4)
RETURNING id, username, email, password_hash, is_active, roles, signup_date
"""
# Concurrent replicas may bootstrap the same admin: whoever comes second inserts nothing.
_INSERT_IF_ABSENT = """
INSERT INTO users (username, email, password_hash, roles) VALUES ($1, $2, $3, $4)
ON CONFLICT DO NOTHING
RETURNING id, username, email, password_hash, is_active, roles, signup_date
"""
_BY_USERNAME = """
SELECT id, username, email, password_hash, is_active, roles, signup_date FROM users
WHERE lower(username) = lower($1)
"""
_BY_ID = """
SELECT id, username, email, password_hash, is_active, roles, signup_date FROM users WHERE id = $1
"""
_SET_ACTIVE = """
UPDATE users SET is_active = $2 WHERE id = $1
RETURNING id, username, email, password_hash, is_active, roles, signup_date
"""
_DELETE = "DELETE FROM users WHERE id = $1 RETURNING id"


class UserRepository(Repository[StoredUser]):
    """The `UserStore` port."""

    record = StoredUser

    async def insert(
        self, username: str, email: str, password_hash: str, roles: Sequence[str] = ()
    ) -> StoredUser:
        """Insert a user; the unique indexes (not a pre-check) decide duplicates, so races end in 409 too."""
        try:
            return await self.one(_INSERT, username, email, password_hash, list(roles))
        except asyncpg.UniqueViolationError as exc:
            raise DuplicateUser(_CONSTRAINT_FIELDS.get(exc.constraint_name, "username or email")) from None

    async def insert_if_absent(
        self, username: str, email: str, password_hash: str, roles: Sequence[str]
    ) -> StoredUser | None:
        """None when a user with that username or email already exists."""
        return await self.one(_INSERT_IF_ABSENT, username, email, password_hash, list(roles))

    async def by_username(self, username: str) -> StoredUser | None:
        return await self.one(_BY_USERNAME, username)

    async def by_id(self, user_id: int) -> StoredUser | None:
        return await self.one(_BY_ID, user_id)

    async def set_active(self, user_id: int, active: bool) -> StoredUser | None:
        return await self.one(_SET_ACTIVE, user_id, active)

    async def delete(self, user_id: int) -> bool:
        return await self.pool.fetchval(_DELETE, user_id) is not None
