import json
from typing import ClassVar

from pydantic import Field, SecretStr, field_validator

from service_kit.settings import ServiceSettings


class UsersSettings(ServiceSettings):
    service_name: str = "users"
    # Redis holds the login throttle's counts. It fails open (logins go on unthrottled), so a Redis outage
    # leaves users ready: Redis is no readiness check here.
    redis_url: SecretStr
    redis_in_readiness: ClassVar[bool] = False
    # Only the users service holds the private key; everyone else verifies with the public half.
    jwt_private_key: SecretStr
    jwt_key_id: str = "users-1"
    access_token_ttl_seconds: int = 900
    admin_username: str | None = None
    admin_password: SecretStr | None = None
    # Service identity: a JSON object {"<calling service>": "<its client secret>"} (a stack secret; the platform
    # builds it from each caller's own secret). Service tokens are short-lived: they are fetched again anyway.
    service_client_secrets: SecretStr
    service_token_ttl_seconds: int = 300
    # Login throttling (limits' notation, counted in Redis): failed logins allowed per username and per client
    # address before POST /token answers 429 with Retry-After. A success clears the username's count.
    login_username_limit: str = "10/5minutes"
    login_client_limit: str = "100/5minutes"
    # Argon2id cost of a password hash (argon2-cffi's defaults, RFC 9106's low-memory choice: 3 passes over 64 MiB,
    # ~0.26 s of CPU per hash or login here). A hash records its own cost, so a stored one keeps verifying after a
    # change. The tests' harness lowers both (every registration and login pays it): set them only there.
    password_hash_time_cost: int = Field(default=3, ge=1, le=10)
    password_hash_memory_kib: int = Field(default=65536, ge=1024, le=262144)

    @field_validator("service_client_secrets")
    @classmethod
    def _clients_object(cls, value: SecretStr) -> SecretStr:
        try:
            clients = json.loads(value.get_secret_value())
        except ValueError:
            raise ValueError("must be a JSON object of service name → client secret") from None
        if not isinstance(clients, dict) or not all(
            isinstance(k, str) and isinstance(v, str) and len(v) >= 16 for k, v in clients.items()
        ):
            raise ValueError("must be a JSON object of service name → client secret (16+ characters)")
        return value

    @field_validator("login_username_limit", "login_client_limit")
    @classmethod
    def _limit(cls, value: str) -> str:
        from limits import parse

        parse(value)  # ValueError names the notation it could not read
        return value

    def service_clients(self) -> dict[str, str]:
        return json.loads(self.service_client_secrets.get_secret_value())
