"""What the accounts logic needs from the outside, as protocols: the infrastructure implements them and
core/lifespan.py wires them in."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol

from users_service.domain.models import StoredUser


class UserStore(Protocol):
    async def insert(
        self, username: str, email: str, password_hash: str, roles: Sequence[str] = ()
    ) -> StoredUser:
        """DuplicateUser when the username or email is taken."""
        ...

    async def insert_if_absent(
        self, username: str, email: str, password_hash: str, roles: Sequence[str]
    ) -> StoredUser | None: ...

    async def by_username(self, username: str) -> StoredUser | None: ...

    async def by_id(self, user_id: int) -> StoredUser | None: ...

    async def set_active(self, user_id: int, active: bool) -> StoredUser | None: ...

    async def delete(self, user_id: int) -> bool: ...


class Hasher(Protocol):
    """Password hashing; `verify` against None costs as much as against a real hash."""

    async def hash(self, password: str) -> str: ...

    async def verify(self, password: str, password_hash: str | None) -> bool: ...


class Issuer(Protocol):
    """Signs the tokens: users' for a login, a service's for one target service (its audience)."""

    audience: str

    def issue(self, user_id: int, username: str, roles: Sequence[str]) -> str: ...

    def issue_service(self, service: str, audience: str) -> str: ...


class Throttle(Protocol):
    """Failed logins counted per username and per client (fails open)."""

    async def retry_after(self, username: str, client: str) -> int | None: ...

    async def failed(self, username: str, client: str) -> None: ...

    async def succeeded(self, username: str) -> None: ...
