"""The one source of a service's environment variables.

The Pulumi ServiceDeployment and the local runtime (`ops dev up`) both call this module, so a pod and a local
process get the same names and the same non-secret values; only the service addresses and the secret values
differ between them. Every name set here is a field of the service's settings class (tests/platform proves it).
"""

from __future__ import annotations

from pathlib import Path

from pydantic import TypeAdapter, ValidationError

from commerce_platform import catalogue
from commerce_platform.environments import Environment, EnvironmentConfigError, load_environment

JWKS_PATH = "/.well-known/jwks.json"
SERVICE_TOKEN_PATH = "/internal/token"  # the issuer's client-credentials endpoint (service identity)
# Computed here from the environment and the addresses; environments/ may not override them.
DERIVED = frozenset(
    {
        "SERVICE_NAME",
        "ENVIRONMENT",
        "LOG_LEVEL",
        "JWT_JWKS_URL",
        "SERVICE_TOKEN_URL",
        "ADMIN_USERNAME",
        "METRICS_PORT",
        "OTEL_TRACES_EXPORTER",
        "OTEL_EXPORTER_OTLP_ENDPOINT",
    }
)


def plain_env(
    environment: str, service: str, addresses: dict[str, str], repo_root: Path | None = None
) -> dict[str, str]:
    """Every non-secret env var `service` gets in `environment` (dev, prod, pr-<N>).

    `addresses` maps service name → base URL, e.g. "http://users.<ns>.svc.cluster.local:8001" in the cluster or
    "http://127.0.0.1:8001" locally.
    """
    return env_for(load_environment(environment, repo_root), catalogue.get(service), addresses)


def secret_env_names(service: str) -> set[str]:
    """Env vars `service` gets from its Secret (secretKeyRef): its settings' SecretStr fields it has a use for."""
    return secret_names_for(catalogue.get(service))


def secret_names_for(spec: catalogue.ServiceSpec) -> set[str]:
    names = set(spec.secret_env_var_names)
    if not spec.uses_postgres:
        names.discard("DATABASE_URL")
    if not spec.uses_redis:
        names.discard("REDIS_URL")
    return names


def token_issuer(services: tuple[catalogue.ServiceSpec, ...] = catalogue.SERVICES) -> catalogue.ServiceSpec:
    """The service that signs tokens (the one whose settings hold the private key); others fetch its JWKS."""
    return next(s for s in services if "JWT_PRIVATE_KEY" in s.secret_env_var_names)


def cluster_addresses(namespace: str, services: tuple[catalogue.ServiceSpec, ...]) -> dict[str, str]:
    return {s.name: f"http://{s.name}.{namespace}.svc.cluster.local:{s.port}" for s in services}


def env_for(
    env: Environment,
    spec: catalogue.ServiceSpec,
    addresses: dict[str, str],
    services: tuple[catalogue.ServiceSpec, ...] = catalogue.SERVICES,
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
    return {k: _text(values[k]) for k in sorted(values)}


def _text(value: object) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def check_settings_overrides(
    file: str, key: str, overrides: dict[str, object], services: tuple[catalogue.ServiceSpec, ...]
) -> None:
    """environments/ may set only non-secret, non-derived names that the services' settings read."""
    allowed: set[str] = set()
    for s in services:
        allowed |= s.env_var_names - s.secret_env_var_names
    allowed -= DERIVED
    allowed -= {f"{c.upper()}_URL" for s in services for c in s.calls}
    for name in overrides:
        if name not in allowed:
            raise EnvironmentConfigError(
                f"{file}: {key}.{name}: not a non-secret setting the service reads; allowed: {', '.join(sorted(allowed))}"
            )
    for name, value in overrides.items():
        for spec in services:
            _check_value(file, f"{key}.{name}", spec, name, value)


def _check_value(file: str, key: str, spec: catalogue.ServiceSpec, name: str, value: object) -> None:
    """The value as the service will read it (the env var's text) must parse as its settings field: a bad value
    fails the render and `ops policy`, not the pod's start-up."""
    field = spec.settings.model_fields.get(name.lower())
    if field is None:
        return
    try:
        TypeAdapter(field.annotation).validate_python(_text(value))
    except ValidationError as exc:
        error = exc.errors()[0]
        raise EnvironmentConfigError(
            f"{file}: {key}: {value!r} is not valid for {spec.name} ({spec.settings.__name__}.{name.lower()}: "
            f"{_type_name(field.annotation)}): {error['msg']}; fix: set it to a valid {_type_name(field.annotation)}"
        ) from None


def _type_name(annotation: object) -> str:
    return getattr(annotation, "__name__", None) or str(annotation).replace("typing.", "")
