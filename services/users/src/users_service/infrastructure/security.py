"""Password hashing (argon2 via pwdlib) and RS256 token signing with the users service's private key."""

from __future__ import annotations

import asyncio
import secrets
import time
import uuid
from collections.abc import Sequence
from functools import cached_property
from typing import Any

from cryptography.hazmat.primitives import serialization
from jose import jwk, jwt
from pwdlib import PasswordHash
from pwdlib.hashers.argon2 import Argon2Hasher

from users_service.settings import UsersSettings

ALGORITHM = "RS256"


class PasswordHasher:
    """Argon2 hashing off the event loop.

    `dummy_hash` is a real hash of a random secret with the same parameters: a login for an unknown user is
    verified against it, so it costs the same as a wrong password for a known user (no user enumeration by
    timing). `verifications` counts every verification, so tests can see both paths do the work.
    """

    def __init__(self, time_cost: int, memory_kib: int, max_concurrent: int = 2) -> None:
        self._hash = PasswordHash((Argon2Hasher(time_cost=time_cost, memory_cost=memory_kib),))
        self.dummy_hash = self._hash.hash(secrets.token_urlsafe(32))
        self.verifications = 0
        # Each argon2 run takes `memory_kib` (64 MiB by default): a burst of logins queues here instead of blowing the memory limit.
        self._slots = asyncio.Semaphore(max_concurrent)

    async def hash(self, password: str) -> str:
        async with self._slots:
            return await asyncio.to_thread(self._hash.hash, password)

    async def verify(self, password: str, password_hash: str | None) -> bool:
        self.verifications += 1
        async with self._slots:
            return await asyncio.to_thread(self._hash.verify, password, password_hash or self.dummy_hash)


class TokenIssuer:
    def __init__(self, settings: UsersSettings) -> None:
        self.private_pem = settings.jwt_private_key.get_secret_value()
        self.key_id = settings.jwt_key_id
        self.issuer = settings.jwt_issuer
        self.audience = settings.jwt_audience
        self.ttl_seconds = settings.access_token_ttl_seconds
        self.service_ttl_seconds = settings.service_token_ttl_seconds

    @cached_property
    def public_pem(self) -> str:
        private_key = serialization.load_pem_private_key(self.private_pem.encode(), password=None)
        return (
            private_key.public_key()
            .public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
            .decode()
        )

    def issue(self, user_id: int, username: str, roles: Sequence[str]) -> str:
        now = int(time.time())
        claims = {
            "iss": self.issuer,
            "aud": self.audience,
            "sub": str(user_id),
            "iat": now,
            "exp": now + self.ttl_seconds,
            "jti": uuid.uuid4().hex,
            "roles": list(roles),
            "username": username,
        }
        return jwt.encode(claims, self.private_pem, algorithm=ALGORITHM, headers={"kid": self.key_id})

    def issue_service(self, service: str, audience: str) -> str:
        """A calling service's token for one target service (its audience); no roles, a `service` claim."""
        now = int(time.time())
        claims = {
            "iss": self.issuer,
            "aud": audience,
            "sub": f"service:{service}",
            "service": service,
            "iat": now,
            "exp": now + self.service_ttl_seconds,
            "jti": uuid.uuid4().hex,
        }
        return jwt.encode(claims, self.private_pem, algorithm=ALGORITHM, headers={"kid": self.key_id})

    def jwks(self) -> dict[str, Any]:
        public = jwk.construct(self.public_pem, ALGORITHM).to_dict()
        key = {"kty": public["kty"], "n": public["n"], "e": public["e"]}
        return {"keys": [key | {"kid": self.key_id, "alg": ALGORITHM, "use": "sig"}]}
