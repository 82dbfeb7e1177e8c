"""The service catalogue: what each bundled service is, in one place.

Ports, probe paths, public prefixes, who may call whom and which settings class a service reads all come from
here; the Pulumi components, the policy rules, the local runtime and the gateway never type them twice.
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass
from functools import cache

from pydantic_settings import BaseSettings

from service_kit.settings import env_var_names, secret_env_var_names

LIVENESS_PATH = "/health"
READINESS_PATH = "/ready"
GATEWAY_PORT = 8000
METRICS_PATH = "/metrics"
# Each service serves /metrics on its own port (service port + this), never on the service port: the Ingress and
# the gateway route only service ports, and the monitoring namespace is admitted to the metrics port alone.
# 9091-9094: clear of 9090 (Prometheus itself) and of a second local stack at the round `--port-offset 1000`.
METRICS_PORT_OFFSET = 1090
# On the Namespace of an environment whose monitoring is on; the policy rule `deployment-scraped` reads it.
MONITORING_LABEL = "commerce-platform/monitoring"
# On the Namespace of an environment whose cluster provides the metrics API (addons.metrics_server: cluster); the
# policy rule `hpa-has-metrics-api` reads it (or finds the metrics-server release in the stack).
METRICS_API_LABEL = "commerce-platform/metrics-api"


@dataclass(frozen=True)
class ServiceSpec:
    name: str
    port: int
    package: str  # importable package: <package>.main:app, <package>/migrations/*.sql
    settings_class: str  # "module:Class"
    public_prefixes: tuple[str, ...]
    calls: tuple[str, ...] = ()  # other services this one calls over HTTP
    uses_postgres: bool = True

    @property
    def app(self) -> str:
        return f"{self.package}.main:app"

    @property
    def metrics_port(self) -> int:
        return self.port + METRICS_PORT_OFFSET

    @property
    def database(self) -> str:
        """The service's own database (and login role) name."""
        return self.name

    @property
    def settings(self) -> type[BaseSettings]:
        return _load(self.settings_class)

    @property
    def uses_redis(self) -> bool:
        """Whether Redis is a dependency: its settings class requires REDIS_URL (the kit's default is none)."""
        field = self.settings.model_fields.get("redis_url")
        return field is not None and field.is_required()

    @property
    def env_var_names(self) -> set[str]:
        return env_var_names(self.settings)

    @property
    def secret_env_var_names(self) -> set[str]:
        return secret_env_var_names(self.settings)


@cache
def _load(path: str) -> type[BaseSettings]:
    module, _, attr = path.partition(":")
    return getattr(importlib.import_module(module), attr)


SERVICES: tuple[ServiceSpec, ...] = (
    ServiceSpec(
        name="users",
        port=8001,
        package="users_service",
        settings_class="users_service.settings:UsersSettings",
        public_prefixes=("/users", "/token", "/.well-known"),
    ),
    ServiceSpec(
        name="inventory",
        port=8002,
        package="inventory_service",
        settings_class="inventory_service.settings:InventorySettings",
        public_prefixes=("/products",),
    ),
    ServiceSpec(
        name="orders",
        port=8003,
        package="orders_service",
        settings_class="orders_service.settings:OrdersSettings",
        public_prefixes=("/orders",),
        calls=("users", "inventory", "payments"),
    ),
    ServiceSpec(
        name="payments",
        port=8004,
        package="payments_service",
        settings_class="payments_service.settings:PaymentsSettings",
        public_prefixes=("/payments",),
    ),
)

BY_NAME = {s.name: s for s in SERVICES}


def get(name: str) -> ServiceSpec:
    try:
        return BY_NAME[name]
    except KeyError:
        raise KeyError(f"unknown service {name!r}; known: {', '.join(BY_NAME)}") from None
