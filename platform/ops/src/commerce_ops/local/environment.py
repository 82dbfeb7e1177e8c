"""The env vars each local service gets: the platform's own dev values (`commerce_platform.service_env`, the same
code the Deployments use), with local addresses and the local secret values filled in. Nothing is typed here.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from commerce_platform import catalogue

if TYPE_CHECKING:
    from commerce_platform.environments import Environment

ENVIRONMENT = "dev"


class NoLocalValueError(RuntimeError):
    pass


class OverrideError(ValueError):
    """A `--set` that names no service, no setting of that service, a secret, or has no `=` (one line)."""


def parse_overrides(items: list[str]) -> dict[str, dict[str, str]]:
    """`ops dev up --set users.PASSWORD_HASH_TIME_COST=1` (or `OPS_DEV_SET`): per service, settings that replace
    the dev environment's values on this laptop, e.g. a cheap password hash for a faster loop. Only names the
    service's settings class reads, and never a secret (they are recorded in the state file, which holds none)."""
    overrides: dict[str, dict[str, str]] = {}
    services = [spec.name for spec in catalogue.SERVICES]
    for item in items:
        target, equals, value = item.partition("=")
        service, dot, name = target.partition(".")
        name = name.upper()
        if not (equals and dot and service and name):
            raise OverrideError(f"--set {item!r}: give SERVICE.SETTING=VALUE, e.g. users.LOG_LEVEL=DEBUG")
        if service not in services:
            raise OverrideError(f"--set {item!r}: unknown service {service!r}; one of: {', '.join(services)}")
        spec = catalogue.get(service)
        if name in spec.secret_env_var_names:
            raise OverrideError(f"--set {item!r}: {name} is a secret; the local runtime owns its value")
        if name not in spec.env_var_names:
            raise OverrideError(
                f"--set {item!r}: {service} reads no setting {name} (its settings: "
                f"{', '.join(sorted(spec.env_var_names - spec.secret_env_var_names))})"
            )
        overrides.setdefault(service, {})[name] = value
    return overrides


@dataclass(frozen=True)
class SecretValues:
    """The secret values the local runtime owns; which ones a service receives is decided by the platform."""

    database_urls: dict[str, str]  # service name → its own login's URL
    redis_url: str
    jwt_private_key: str
    admin_username: str
    admin_password: str
    client_secrets: dict[str, str] = field(default_factory=dict)  # calling service → its client secret

    def value(self, service: str, env_name: str) -> str:
        by_name = {
            "SERVICE_CLIENT_SECRET": self.client_secrets.get(service),
            "SERVICE_CLIENT_SECRETS": json.dumps(self.client_secrets, sort_keys=True),
            "DATABASE_URL": self.database_urls.get(service),
            "REDIS_URL": self.redis_url,
            "JWT_PRIVATE_KEY": self.jwt_private_key,
            "ADMIN_USERNAME": self.admin_username,
            "ADMIN_PASSWORD": self.admin_password,
        }
        found = by_name.get(env_name)
        if found is None:
            raise NoLocalValueError(
                f"the local runtime has no value for secret {env_name} of service {service}"
            )
        return found


def local_env(
    environment: Environment, service: str, addresses: Mapping[str, str], secrets: SecretValues
) -> dict[str, str]:
    """Exactly the variables the platform sets for `service` in `environment` (dev for `ops dev`), with local
    addresses and secret values."""
    from commerce_platform.service_env import service_env

    variables = service_env(environment, service, addresses)
    return variables.plain | {name: secrets.value(service, name) for name in sorted(variables.secret_names)}


def process_env(service_vars: dict[str, str]) -> dict[str, str]:
    """The full environment of a service process: ours, plus the developer's environment minus any variable a
    service setting would read (a stray LOG_LEVEL or DATABASE_URL in the shell must not leak in)."""
    setting_names = {name for spec in catalogue.SERVICES for name in spec.env_var_names}
    inherited = {k: v for k, v in os.environ.items() if k.upper() not in setting_names}
    return {**inherited, "PYTHONUNBUFFERED": "1", **service_vars}
