"""Local secrets, generated once and kept in `<local dir>/secrets.json` (mode 0600, never committed).

An RS256 key pair for the users service, the admin login, the embedded Postgres superuser password, one
password per service login and one client secret per calling service (service identity).
"""

from __future__ import annotations

import json
import os
import secrets
from dataclasses import asdict, dataclass, field
from pathlib import Path

ADMIN_USERNAME = "admin"


def _password() -> str:
    # URL-safe, so it can sit in a connection URL without quoting.
    return secrets.token_urlsafe(24)


def rsa_key_pair() -> tuple[str, str]:
    """A fresh RS256 signing key pair as (private PKCS8 PEM, public SPKI PEM); local runs and tests use it."""
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import rsa

    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    private_pem = key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    ).decode()
    public_pem = (
        key.public_key()
        .public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
        .decode()
    )
    return private_pem, public_pem


@dataclass
class LocalSecrets:
    jwt_private_key: str
    jwt_public_key: str  # not given to any service (they fetch the JWKS); kept for checking tokens by hand
    admin_username: str
    admin_password: str
    postgres_password: str
    database_passwords: dict[str, str] = field(default_factory=dict)
    client_secrets: dict[str, str] = field(default_factory=dict)

    @classmethod
    def generate(cls) -> LocalSecrets:
        private_pem, public_pem = rsa_key_pair()
        return cls(
            jwt_private_key=private_pem,
            jwt_public_key=public_pem,
            admin_username=ADMIN_USERNAME,
            admin_password=_password(),
            postgres_password=_password(),
        )

    def database_password(self, role: str) -> str:
        """The login password of one service role, created on first use."""
        if role not in self.database_passwords:
            self.database_passwords[role] = _password()
        return self.database_passwords[role]

    def client_secret(self, service: str) -> str:
        """The client secret a calling service gets service tokens with, created on first use."""
        if service not in self.client_secrets:
            self.client_secrets[service] = secrets.token_urlsafe(32)
        return self.client_secrets[service]


def load_or_create(path: Path) -> tuple[LocalSecrets, bool]:
    """The secrets at `path`, generating them the first time. Returns (secrets, created)."""
    if path.exists():
        return LocalSecrets(**json.loads(path.read_text())), False
    return LocalSecrets.generate(), True


def save(path: Path, value: LocalSecrets) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    # Created 0600 from the start: the file never exists with wider permissions, not even briefly.
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as out:
        json.dump(asdict(value), out, indent=2, sort_keys=True)
    os.replace(tmp, path)
