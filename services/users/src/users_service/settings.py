from pydantic import SecretStr

from service_kit.settings import ServiceSettings


class UsersSettings(ServiceSettings):
    service_name: str = "users"
    # Only the users service holds the private key; everyone else verifies with the public half.
    jwt_private_key: SecretStr
    jwt_key_id: str = "users-1"
    access_token_ttl_seconds: int = 900
    admin_username: str | None = None
    admin_password: SecretStr | None = None
