"""Settings every service reads from its environment.

The env var name of each field is the field name upper-cased (no prefix). These classes are the single source of
truth for env var names: the platform (Deployments) and the local runtime (`ops dev up`) both derive the variables
they set from them, and tests/platform checks that nothing else is set.
"""

from __future__ import annotations

from typing import ClassVar, Literal, get_args

from pydantic import Field, SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict

# The most items one batch request to an internal endpoint may carry (service_kit.batch; a client's batch size
# setting is bounded by it). Here, not in batch.py, so a settings module can name it without the web stack.
MAX_BATCH = 64


class ServiceSettings(BaseSettings):
    model_config = SettingsConfigDict(case_sensitive=False, extra="ignore", frozen=True)

    service_name: str
    environment: str = "local"
    log_level: str = "INFO"

    # Each service owns its own database; the URL carries its own login, so it is a secret.
    database_url: SecretStr
    db_pool_min_size: int = 1
    db_pool_max_size: int = 10
    # Only a service whose settings require it (inventory's cache) gets a Redis; for the others Redis is no
    # dependency at all: no client, no readiness check, no REDIS_URL from the platform.
    redis_url: SecretStr | None = None
    # Whether a Redis outage makes the service unready (a class attribute, not an env var): inventory's cache
    # reports it; a service whose every Redis use fails open (users' login throttle) says False.
    redis_in_readiness: ClassVar[bool] = True
    # Readiness checks must answer fast even when a dependency hangs.
    dependency_timeout_seconds: float = 1.0
    # Request bodies above this many bytes are refused with 413 before they are read whole (service_kit.limits).
    max_body_bytes: int = 1024 * 1024

    jwt_issuer: str = "commerce-users"
    jwt_audience: str = "commerce-platform"
    # Verifiers use a configured public key when given, else fetch (and cache) the issuer's JWKS.
    jwt_public_key: str | None = None
    jwt_jwks_url: str | None = None
    jwks_cache_seconds: int = 300
    # How long a service trusts the issuer's "this user is active" answer (service_kit.auth), per user. A disabled
    # or deleted user's token stops working everywhere within this many seconds, so it is bounded to 1–60: the
    # 60 s bound on revocation cannot be configured away.
    active_check_seconds: int = Field(default=30, ge=1, le=60)

    # Prometheus metrics (service_kit.metrics): with METRICS_PORT (the platform sets it) on that port alone,
    # without it (`ops dev up`) on the service port.
    metrics_enabled: bool = True
    metrics_port: int | None = None
    metrics_host: str = "0.0.0.0"
    # OpenTelemetry (service_kit.tracing), by the standard variable names; `none` instruments nothing.
    otel_traces_exporter: Literal["none", "console", "otlp"] = "none"
    otel_exporter_otlp_endpoint: str | None = None  # read by the OTLP exporter itself
    traces_file: str | None = None  # where the console exporter writes (one JSON span a line); default stdout


class CallerSettings(ServiceSettings):
    """Settings of a service that calls other services (service_kit.identity fetches its tokens)."""

    # The issuer's token endpoint (derived by the platform from the issuer's address).
    service_token_url: str
    # This service's client secret at the issuer (a stack secret; local runs generate one).
    service_client_secret: SecretStr


def env_var_names(settings_cls: type[BaseSettings]) -> set[str]:
    """The env var names a settings class reads."""
    return {name.upper() for name in settings_cls.model_fields}


def secret_env_var_names(settings_cls: type[BaseSettings]) -> set[str]:
    """The env var names whose values are secrets (SecretStr fields, optional ones included)."""
    return {
        name.upper() for name, field in settings_cls.model_fields.items() if _holds_secret(field.annotation)
    }


def _holds_secret(annotation: object) -> bool:
    """SecretStr (or a subclass), or a union / Annotated / generic with one inside (`SecretStr | None`)."""
    if isinstance(annotation, type) and issubclass(annotation, SecretStr):
        return True
    return any(_holds_secret(arg) for arg in get_args(annotation))
