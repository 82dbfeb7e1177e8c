"""The platform's secrets: which Pulumi config secrets a stack needs, read as secret Outputs.

Nothing here has a default: every stack (dev included) sets its own values with `pulumi config set --secret`,
so no private key or password is ever committed. A missing one stops the program with a one-line error naming
the command to run.
"""

from __future__ import annotations

from dataclasses import dataclass

import pulumi

from commerce_platform import catalogue
from commerce_platform.environments import Environment


class MissingSecretError(pulumi.RunError):
    """Raised as a RunError so the Pulumi CLI prints the message alone, without a traceback."""


@dataclass(frozen=True)
class SecretKey:
    key: str
    purpose: str


def required_secrets(env: Environment, services: tuple[catalogue.ServiceSpec, ...]) -> list[SecretKey]:
    """Every config secret the program reads for `env`, in a stable order."""
    keys = [
        SecretKey("jwtPrivateKey", "RS256 private key (PEM) the token issuer signs with"),
        SecretKey("adminPassword", "password of the bootstrap admin user"),
    ]
    # Service identity: each service that calls others proves itself to the token issuer with its own secret.
    keys += [
        SecretKey(client_secret_key(s.name), f"client secret {s.name} gets service tokens with")
        for s in services
        if s.calls
    ]
    db_users = [s for s in services if s.uses_postgres]
    if env.spec.postgres.mode == "in-cluster":
        keys.append(SecretKey("postgresPassword", "superuser password of the in-cluster Postgres"))
        keys += [SecretKey(f"{_camel(s.name)}DbPassword", f"Postgres login of {s.name}") for s in db_users]
    else:
        keys += [
            SecretKey(f"{_camel(s.name)}DatabaseUrl", f"external Postgres URL of {s.name}") for s in db_users
        ]
    if env.spec.redis.mode == "in-cluster":
        keys.append(SecretKey("redisPassword", "password of the in-cluster Redis"))
    else:
        keys.append(SecretKey("redisUrl", "external Redis URL"))
    return keys


def set_command(stack: str, key: str) -> str:
    return f"pulumi config set --secret {key} --stack {stack} <value>"


def missing_secret_message(stack: str, secret: SecretKey) -> str:
    """The one line for a secret the stack lacks (the program raises it; `ops secrets` prints it offline)."""
    return (
        f"stack {stack!r} is missing the secret {secret.key!r} ({secret.purpose}); "
        f"run: {set_command(stack, secret.key)}"
    )


def client_secret_key(service: str) -> str:
    return f"{_camel(service)}ClientSecret"


def _camel(name: str) -> str:
    head, *rest = name.replace("_", "-").split("-")
    return head + "".join(p.capitalize() for p in rest)


class PlatformSecrets:
    """The stack's secrets as secret Outputs (kept secret end to end: config → k8s Secret → secretKeyRef)."""

    def __init__(self, env: Environment, services: tuple[catalogue.ServiceSpec, ...]):
        self._config = pulumi.Config()
        self._stack = env.name
        self._values: dict[str, pulumi.Output[str]] = {}
        for secret in required_secrets(env, services):
            self._values[secret.key] = self._require(secret)

    def _require(self, secret: SecretKey) -> pulumi.Output[str]:
        value = self._config.get_secret(secret.key)
        if value is None:
            raise MissingSecretError(missing_secret_message(self._stack, secret))
        return value

    def get(self, key: str) -> pulumi.Output[str]:
        return self._values[key]

    def client_secrets(self, services: tuple[catalogue.ServiceSpec, ...]) -> dict[str, pulumi.Output[str]]:
        """Each calling service's client secret, by service name."""
        return {s.name: self._values[client_secret_key(s.name)] for s in services if s.calls}

    def db_password(self, service: str) -> pulumi.Output[str]:
        return self._values[f"{_camel(service)}DbPassword"]

    def database_url(self, service: str) -> pulumi.Output[str]:
        return self._values[f"{_camel(service)}DatabaseUrl"]

    @property
    def kubeconfig(self) -> pulumi.Output[str] | None:
        # Optional: without it the provider uses the named kube context from the default kubeconfig.
        return self._config.get_secret("kubeconfig")
