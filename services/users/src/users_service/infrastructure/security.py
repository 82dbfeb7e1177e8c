"""Password hashing (argon2 via pwdlib) and RS256 token signing with the users service's private key."""

from __future__ import annotations

import asyncio
import base64
import secrets
import time
import uuid
from collections.abc import Sequence
from functools import cached_property
from typing import Any

from argon2.low_level import ARGON2_VERSION
from cryptography.hazmat.primitives import serialization
from jose import jwk, jwt
from pwdlib import PasswordHash
from pwdlib.hashers.argon2 import Argon2Hasher

from users_service.settings import UsersSettings

ALGORITHM = "RS256"


class PasswordHasher:
    """Argon2 hashing off the event loop.

    `dummy_hash` is an argon2 hash with the same variant and parameters as real ones: a login for an unknown
    user is verified against it, so it costs the same as a wrong password for a known user (no user enumeration
    by timing). `verifications` counts every verification, so tests can see both paths do the work.
    """

    def __init__(self, time_cost: int, memory_kib: int, max_concurrent: int = 2) -> None:
        hasher = Argon2Hasher(time_cost=time_cost, memory_cost=memory_kib)
        self._hash = PasswordHash((hasher,))
        self.dummy_hash = _dummy_hash(hasher)
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


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode().rstrip("=")


def _dummy_hash(hasher: Argon2Hasher) -> str:
    """An encoded argon2 hash with `hasher`'s parameters and a random salt and digest, made without running argon2
    (at production cost one hash is ~0.26 s of CPU, at every start). Verifying against it runs the full argon2
    computation with those parameters, then fails: no password has this digest, as none is known for a hash
    of a random secret."""
    params = hasher._hasher  # argon2-cffi's PasswordHasher, holding the parameters pwdlib passed it
    return (
        f"$argon2{params.type.name.lower()}$v={ARGON2_VERSION}$m={params.memory_cost},t={params.time_cost},p={params.parallelism}"
        f"${_b64(secrets.token_bytes(params.salt_len))}${_b64(secrets.token_bytes(params.hash_len))}"
    )


class TokenIssuer:
    def __init__(self, settings: UsersSettings) -> None:
        self.private_pem = settings.jwt_private_key.get_secret_value()
        self.key_id = settings.jwt_key_id
        self.issuer = settings.jwt_issuer
        self.audience = settings.jwt_audience
        self.ttl_seconds = settings.access_token_ttl_seconds
        self.service_ttl_seconds = settings.service_token_ttl_seconds

    @cached_property
    def _signing_key(self) -> jwk.Key:
        """The private key, parsed once: python-jose parses a PEM on every `jwt.encode` it is given, and loading an
        RSA private key (with cryptography's consistency checks) cost tens of ms of CPU per token issued."""
        return jwk.construct(self.private_pem, ALGORITHM)

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
        return jwt.encode(claims, self._signing_key, algorithm=ALGORITHM, headers={"kid": self.key_id})

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
        return jwt.encode(claims, self._signing_key, algorithm=ALGORITHM, headers={"kid": self.key_id})

    def jwks(self) -> dict[str, Any]:
        public = jwk.construct(self.public_pem, ALGORITHM).to_dict()
        key = {"kty": public["kty"], "n": public["n"], "e": public["e"]}
        return {"keys": [key | {"kid": self.key_id, "alg": ALGORITHM, "use": "sig"}]}
