"""Registration, login, service credentials, account admin and the admin bootstrap: free of HTTP."""

from __future__ import annotations

import hmac
import logging
import re

from service_kit.auth import Principal
from service_kit.limits import has_control_characters
from service_kit.metrics import LOGIN_FAILURES
from users_service.domain.errors import (
    InvalidClient,
    InvalidCredentials,
    LoginThrottled,
    OwnAccount,
    UserNotFound,
)
from users_service.domain.models import MAX_PASSWORD_LENGTH, StoredUser, UserCreate
from users_service.domain.ports import Hasher, Issuer, Throttle, UserStore

ADMIN_ROLE = "admin"
SERVICE_GRANT = "client_credentials"
_AUDIENCE = re.compile(r"^[a-z][a-z0-9-]{0,62}$")
logger = logging.getLogger("users.accounts")


class Accounts:
    def __init__(
        self,
        repository: UserStore,
        hasher: Hasher,
        issuer: Issuer,
        throttle: Throttle | None = None,
        service_clients: dict[str, str] | None = None,
    ) -> None:
        self.repository = repository
        self.hasher = hasher
        self.issuer = issuer
        self.throttle = throttle
        self.service_clients = service_clients or {}

    async def register(self, data: UserCreate) -> StoredUser:
        password_hash = await self.hasher.hash(data.password.get_secret_value())
        return await self.repository.insert(data.username, str(data.email), password_hash)

    async def authenticate(self, username: str, password: str) -> StoredUser:
        """The user for these credentials; an unknown user costs one argon2 verification like a known one, and a
        disabled account gets the same answer as a wrong password (only after the password check, in the same
        time), so the answer never confirms a password or an account."""
        if len(password) > MAX_PASSWORD_LENGTH or len(username) > 320 or has_control_characters(username):
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
            raise InvalidCredentials
        return user

    async def login(self, username: str, password: str, client: str = "unknown") -> str:
        """A token for these credentials, unless this username or client failed too often lately (429)."""
        if self.throttle is not None:
            retry_after = await self.throttle.retry_after(username, client)
            if retry_after is not None:
                LOGIN_FAILURES.labels("throttled").inc()
                raise LoginThrottled(retry_after)
        try:
            user = await self.authenticate(username, password)
        except InvalidCredentials:
            if self.throttle is not None:
                await self.throttle.failed(username, client)
            raise
        if self.throttle is not None:
            await self.throttle.succeeded(username)
        return self.issuer.issue(user.id, user.username, user.roles)

    def service_token(self, grant_type: str, client_id: str, client_secret: str, audience: str) -> str:
        """Client credentials: a calling service's short-lived token for one target service."""
        expected = self.service_clients.get(client_id)
        # compare_digest on both branches, so an unknown client takes as long as a wrong secret.
        matches = hmac.compare_digest(client_secret.encode(), (expected or "\0" * 32).encode())
        if grant_type != SERVICE_GRANT or expected is None or not matches:
            raise InvalidClient()
        if not _AUDIENCE.fullmatch(audience) or audience in (self.issuer.audience, client_id):
            raise InvalidClient(f"audience {audience[:64]!r} is not a service this client may call")
        return self.issuer.issue_service(client_id, audience)

    async def is_active(self, principal: Principal) -> bool:
        """Whether a token's user still exists and is active (checked on every request the issuer serves)."""
        user = await self.by_subject(principal.user_id)
        return user is not None and user.is_active

    async def profile(self, principal: Principal) -> StoredUser:
        """The caller's current record. The verifier already refused a disabled or deleted user's token (401);
        an account deleted since is 404."""
        user = await self.by_subject(principal.user_id)
        if user is None:
            raise UserNotFound
        return user

    async def set_active(self, admin: Principal, user_id: int, active: bool) -> StoredUser:
        if str(user_id) == admin.user_id:
            raise OwnAccount()
        user = await self.repository.set_active(user_id, active)
        if user is None:
            raise UserNotFound()
        logger.info("user active changed", extra={"user_id": user_id, "is_active": active})
        return user

    async def delete(self, admin: Principal, user_id: int) -> None:
        if str(user_id) == admin.user_id:
            raise OwnAccount()
        if not await self.repository.delete(user_id):
            raise UserNotFound()
        logger.info("user deleted", extra={"user_id": user_id})

    async def by_subject(self, subject: str) -> StoredUser | None:
        """The user a token's `sub` names (None when it no longer exists)."""
        if not subject.isdecimal() or len(subject) > 18:
            return None
        return await self.repository.by_id(int(subject))

    async def bootstrap_admin(self, username: str, password: str) -> StoredUser | None:
        """Create the admin once. An existing user of that name is left as is (and the reason logged).

        Looked up first: on every start after the first the admin exists, and hashing the password for an insert
        that would not happen costs one argon2 run (~0.26 s of CPU at the production cost) for nothing."""
        existing = await self.repository.by_username(username)
        if existing is None:
            password_hash = await self.hasher.hash(password)
            created = await self.repository.insert_if_absent(
                username, f"{username}@admin.invalid", password_hash, [ADMIN_ROLE]
            )
            if created is not None:
                logger.info("admin user created", extra={"username": username})
                return created
            existing = await self.repository.by_username(username)  # another replica created it meanwhile
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
