"""The one source of a service's environment variables: `service_env()`.

The Pulumi ServiceDeployment, the local runtime (`ops dev up`) and the services' test harness all call it, so a
pod, a local process and a test process get the same names and the same non-secret values; only the service
addresses and the secret values differ between them. Every name set here is a field of the service's settings
class (tests/platform proves it).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from commerce_platform import catalogue
from commerce_platform.environments import Environment, setting_text

JWKS_PATH = "/.well-known/jwks.json"
SERVICE_TOKEN_PATH = "/internal/token"  # the issuer's client-credentials endpoint (service identity)


@dataclass(frozen=True)
class ServiceEnv:
    """What `service` gets in an environment: the plain values (its ConfigMap), and the names its Secret holds
    (secretKeyRef): its settings' SecretStr fields it has a use for. The secret values are the caller's."""

    plain: dict[str, str]
    secret_names: frozenset[str]


def service_env(
    env: Environment,
    service: str | catalogue.ServiceSpec,
    addresses: Mapping[str, str],
    services: tuple[catalogue.ServiceSpec, ...] = catalogue.SERVICES,
) -> ServiceEnv:
    """The env of `service` in `env` (dev, prod, pr-<N>, as loaded by `load_environment`).

    `addresses` maps service name → base URL, e.g. "http://users.<ns>.svc.cluster.local:8001" in the cluster or
    "http://127.0.0.1:8001" locally; only the token issuer's and the service's callees' are read.
    """
    spec = catalogue.get(service) if isinstance(service, str) else service
    return ServiceEnv(plain=_plain(env, spec, addresses, services), secret_names=_secret_names(spec))


def token_issuer(services: tuple[catalogue.ServiceSpec, ...] = catalogue.SERVICES) -> catalogue.ServiceSpec:
    """The service that signs tokens (the one whose settings hold the private key); others fetch its JWKS."""
    return next(s for s in services if "JWT_PRIVATE_KEY" in s.secret_env_var_names)


def cluster_addresses(namespace: str, services: tuple[catalogue.ServiceSpec, ...]) -> dict[str, str]:
    return {s.name: f"http://{s.name}.{namespace}.svc.cluster.local:{s.port}" for s in services}


def _secret_names(spec: catalogue.ServiceSpec) -> frozenset[str]:
    names = set(spec.secret_env_var_names)
    if not spec.uses_postgres:
        names.discard("DATABASE_URL")
    if not spec.uses_redis:
        names.discard("REDIS_URL")
    return frozenset(names)


def _plain(
    env: Environment,
    spec: catalogue.ServiceSpec,
    addresses: Mapping[str, str],
    services: tuple[catalogue.ServiceSpec, ...],
) -> dict[str, str]:
    names = spec.env_var_names
    values: dict[str, object] = {
        "SERVICE_NAME": spec.name,
        "ENVIRONMENT": env.name,
        "LOG_LEVEL": env.spec.log_level,
    }
    if "METRICS_PORT" in names:
        values["METRICS_PORT"] = spec.metrics_port
    monitoring = env.spec.monitoring
    if "OTEL_TRACES_EXPORTER" in names:
        values["OTEL_TRACES_EXPORTER"] = monitoring.traces
        if monitoring.traces == "otlp":
            values["OTEL_EXPORTER_OTLP_ENDPOINT"] = monitoring.otlp_endpoint
    # Shared settings apply to the services whose settings read them.
    values.update({k: v for k, v in env.spec.settings.items() if k in names})
    issuer = token_issuer(services)
    if spec.name != issuer.name and "JWT_JWKS_URL" in names:
        values["JWT_JWKS_URL"] = addresses[issuer.name] + JWKS_PATH
    if "SERVICE_TOKEN_URL" in names:
        values["SERVICE_TOKEN_URL"] = addresses[issuer.name] + SERVICE_TOKEN_PATH
    for callee in spec.calls:
        values[f"{callee.upper()}_URL"] = addresses[callee]
    if "ADMIN_USERNAME" in names:
        values["ADMIN_USERNAME"] = env.stack.admin_username
    release = env.spec.services.get(spec.name)
    if release is not None:
        values.update(release.settings)
    return {k: setting_text(values[k]) for k in sorted(values)}
