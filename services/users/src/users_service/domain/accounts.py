"""Registration, login and the admin bootstrap: the users service's logic, free of HTTP."""

from __future__ import annotations

import logging

from service_kit.metrics import LOGIN_FAILURES
from users_service.core.security import PasswordHasher, TokenIssuer
from users_service.domain.errors import InactiveUser, InvalidCredentials
from users_service.domain.models import MAX_PASSWORD_LENGTH, StoredUser, UserCreate
from users_service.infrastructure.repository import UserRepository

ADMIN_ROLE = "admin"
logger = logging.getLogger("users.accounts")


class Accounts:
    def __init__(self, repository: UserRepository, hasher: PasswordHasher, issuer: TokenIssuer) -> None:
        self.repository = repository
        self.hasher = hasher
        self.issuer = issuer

    async def register(self, data: UserCreate) -> StoredUser:
        password_hash = await self.hasher.hash(data.password.get_secret_value())
        return await self.repository.insert(data.username, str(data.email), password_hash)

    async def authenticate(self, username: str, password: str) -> StoredUser:
        """The user for these credentials; an unknown user costs one argon2 verification like a known one."""
        if len(password) > MAX_PASSWORD_LENGTH:
            LOGIN_FAILURES.labels("invalid_credentials").inc()
            raise InvalidCredentials
        user = await self.repository.by_username(username)
        # Unknown user: verify against the dummy hash, so both outcomes take the same time.
        valid = await self.hasher.verify(password, user.password_hash if user else None)
        if user is None or not valid:
            LOGIN_FAILURES.labels("invalid_credentials").inc()
            raise InvalidCredentials
        if not user.is_active:
            LOGIN_FAILURES.labels("inactive").inc()
            raise InactiveUser
        return user

    async def login(self, username: str, password: str) -> str:
        user = await self.authenticate(username, password)
        return self.issuer.issue(user.id, user.username, user.roles)

    async def by_subject(self, subject: str) -> StoredUser | None:
        """The user a token's `sub` names (None when it no longer exists)."""
        if not subject.isdecimal() or len(subject) > 18:
            return None
        return await self.repository.by_id(int(subject))

    async def bootstrap_admin(self, username: str, password: str) -> StoredUser | None:
        """Create the admin once. An existing user of that name is left as is (and the reason logged)."""
        password_hash = await self.hasher.hash(password)
        created = await self.repository.insert_if_absent(
            username, f"{username}@admin.invalid", password_hash, [ADMIN_ROLE]
        )
        if created is not None:
            logger.info("admin user created", extra={"username": username})
            return created
        existing = await self.repository.by_username(username)
        if existing is None:
            logger.warning(
                "admin not created: its email belongs to another user", extra={"username": username}
            )
        elif ADMIN_ROLE not in existing.roles:
            logger.warning(
                "admin not created: a non-admin user has this name; not promoted",
                extra={"username": username},
            )
        elif not await self.hasher.verify(password, existing.password_hash):
            logger.warning(
                "admin exists with a different password; ADMIN_PASSWORD not applied",
                extra={"username": username},
            )
        else:
            logger.info("admin user already present", extra={"username": username})
        return existing
