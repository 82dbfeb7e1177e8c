"""Per-environment definitions, validated once into typed objects.

Which file holds what:
- `environments/<env>.yaml` — the release and sizing of one environment: per service the image (`build` or a
  pinned `repo@sha256:` digest), HPA min/max and resources, extra non-secret settings; Postgres and Redis mode
  (in-cluster | external) and size; the namespace ResourceQuota. Reviewed like code, promoted between envs.
- `Pulumi.<stack>.yaml` — stack settings that belong to *where* it runs, not *what* runs: cluster connection
  (kube context), namespace, domain, Kubernetes version (default 1.31), ingress class, and the encrypted secrets
  (`pulumi config set --secret ...`, never plaintext in git).
- Stacks named `pr-<N>` have no files of their own: they are derived from dev (namespace `<dev-namespace>-pr-<N>`,
  host `pr-<N>.<dev-domain>`, one replica, minimal sizing, volumes deleted with the stack).

Which environments exist is one rule (`ENVIRONMENT_RULE`, `known_environments`), used by render, policy, diff
and promote alike: a name with both `environments/<name>.yaml` and `Pulumi.<name>.yaml`, or `pr-<N>`.

Every error names the file, the key and the allowed values in one line (`EnvironmentConfigError`); a misspelt
key gets the closest valid one ("did you mean 'autoscaling'?"), a bad quantity the expected format ('256Mi').
"""

from __future__ import annotations

import difflib
import ipaddress
import re
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Annotated, Any, Literal

import yaml
from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    TypeAdapter,
    ValidationError,
    field_validator,
    model_validator,
)
from pydantic.alias_generators import to_camel

from commerce_platform import catalogue

PROJECT = "commerce-platform"
DEFAULT_K8S_VERSION = "1.31"
BUILD = "build"
REVIEW_STACK = re.compile(r"^pr-([1-9][0-9]{0,6})$")
PINNED_IMAGE = re.compile(r"^[a-z0-9][a-z0-9._/:-]*@sha256:[0-9a-f]{64}$")
QUANTITY = r"^[0-9]+(\.[0-9]+)?(m|Ki|Mi|Gi|Ti|k|M|G|T)?$"
ENVIRONMENT_RULE = (
    "an environment is a name with both environments/<name>.yaml and Pulumi.<name>.yaml, "
    "or pr-<N> (a review stack derived from dev)"
)


class EnvironmentConfigError(ValueError):
    """Bad input in environments/ or Pulumi.<stack>.yaml; str() is one line naming file, key and fix."""


def repo_root_default() -> Path:
    # platform/src/commerce_platform/environments.py → repo root is four levels up
    return Path(__file__).resolve().parents[3]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


Quantity = Annotated[str, Field(pattern=QUANTITY)]
SettingValue = str | int | float | bool


class Resources(_Strict):
    cpu: Quantity  # request
    memory: Quantity  # request; also the limit unless memory_limit is given
    memory_limit: Quantity | None = None

    @property
    def limit_memory(self) -> str:
        return self.memory_limit or self.memory


class Autoscaling(_Strict):
    min: int = Field(ge=1, le=100)
    max: int = Field(ge=1, le=100)
    cpu_percent: int = Field(default=70, ge=10, le=100)
    # Off by default: a service's memory does not fall when replicas are added (it is mostly the interpreter and
    # its caches, not per-request), so a memory target below the idle footprint scales up and never back down.
    # When set, it is a share of the memory *limit* (scale out before the OOM killer), which idle pods stay under.
    memory_percent: int | None = Field(default=None, ge=50, le=95)

    @model_validator(mode="after")
    def _min_le_max(self) -> Autoscaling:
        if self.min > self.max:
            raise ValueError(f"min ({self.min}) must be <= max ({self.max})")
        return self


class ServiceRelease(_Strict):
    release: str  # "build" or repo@sha256:<64 hex>
    autoscaling: Autoscaling
    resources: Resources
    settings: dict[str, SettingValue] = {}

    @field_validator("release")
    @classmethod
    def _release_format(cls, value: str) -> str:
        if value != BUILD and not PINNED_IMAGE.match(value):
            raise ValueError(f"must be 'build' or a pinned digest 'repo@sha256:<64 hex>', got {value!r}")
        return value

    @property
    def builds(self) -> bool:
        return self.release == BUILD


def _networks(values: list[str]) -> list[str]:
    for value in values:
        network = ipaddress.ip_network(value, strict=True)  # ValueError → the one-line message
        if network.prefixlen == 0:
            raise ValueError(f"{value} is everywhere; name the managed store's own network")
    return values


Networks = Annotated[list[str], AfterValidator(_networks)]


class _ExternalStore(_Strict):
    # Where the managed store lives (external mode): client egress is allowed to these networks only.
    cidrs: Networks = []

    @model_validator(mode="after")
    def _cidrs_for_external(self):
        if self.mode == "external" and not self.cidrs:
            raise ValueError("external mode needs cidrs: the managed store's networks, e.g. ['10.40.0.0/24']")
        return self


class Postgres(_ExternalStore):
    mode: Literal["in-cluster", "external"]
    image: str = "postgres:16-alpine"
    uid: int = 70  # the image's postgres user (alpine images: 70)
    storage: Quantity = "1Gi"
    storage_class: str | None = None
    retain_volume: bool = True
    resources: Resources = Resources(cpu="250m", memory="512Mi")


class Redis(_ExternalStore):
    mode: Literal["in-cluster", "external"]
    image: str = "redis:7-alpine"
    uid: int = 999  # the image's redis user
    max_memory_mb: int = Field(default=100, ge=16)
    resources: Resources = Resources(cpu="100m", memory="128Mi")


class Monitoring(_Strict):
    """Prometheus Operator objects (a ServiceMonitor per service, the alert rules, the Grafana dashboard), the
    NetworkPolicy edge from the monitoring namespace to the metrics ports, and the services' trace exporter."""

    enabled: bool = False  # needs the Prometheus Operator's CRDs in the cluster
    namespace: str = Field(default="monitoring", pattern=r"^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$")
    labels: dict[
        str, str
    ] = {}  # what the Prometheus' serviceMonitorSelector/ruleSelector match, e.g. release
    scrape_interval: str = Field(default="30s", pattern=r"^[0-9]+(ms|s|m)$")
    traces: Literal["none", "otlp"] = "none"  # OTEL_TRACES_EXPORTER of every service
    otlp_endpoint: str | None = Field(default=None, pattern=r"^https?://")  # OTEL_EXPORTER_OTLP_ENDPOINT

    @model_validator(mode="after")
    def _endpoint_for_otlp(self) -> Monitoring:
        if self.traces == "otlp" and not self.otlp_endpoint:
            raise ValueError("traces: otlp needs otlp_endpoint (the collector's OTLP/HTTP URL)")
        return self


# How the cluster gets an add-on: `release` (this stack installs the pinned Helm release, components/addons.py),
# `cluster` (the cluster already has it: a managed offering, or the stack that owns the cluster, as dev's for
# review stacks), `off` (not there at all; the policy rules say what then breaks).
AddonMode = Literal["release", "cluster", "off"]


class IngressController(_Strict):
    """Traefik (the ingress-nginx controller is retired): serves the environment's Ingress class."""

    mode: AddonMode = "cluster"
    service_type: Literal["LoadBalancer", "NodePort"] = "LoadBalancer"
    http_node_port: int | None = Field(
        default=None, ge=30000, le=32767
    )  # NodePort (kind maps it to the host)
    https_node_port: int | None = Field(default=None, ge=30000, le=32767)


class CertManager(_Strict):
    """cert-manager, an ACME Issuer in the namespace and the Certificate for the TLS Secret the Ingress serves."""

    mode: AddonMode = "off"
    acme_server: str = Field(default="https://acme-v02.api.letsencrypt.org/directory", pattern=r"^https://")
    acme_email: str | None = Field(default=None, pattern=r"^[^@\s]+@[^@\s]+$")

    @model_validator(mode="after")
    def _email_for_release(self) -> CertManager:
        if self.mode != "off" and not self.acme_email:
            raise ValueError("cert_manager needs acme_email (the ACME account's contact) unless it is off")
        return self


class Addons(_Strict):
    metrics_server: AddonMode = "cluster"  # the metrics API every HorizontalPodAutoscaler reads
    ingress: IngressController = IngressController()
    cert_manager: CertManager = CertManager()

    def provided_by_cluster(self) -> Addons:
        """The same add-ons, each one the cluster provides (review stacks share dev's cluster and add-ons)."""
        cluster = lambda mode: "cluster" if mode == "release" else mode  # noqa: E731
        return Addons(
            metrics_server=cluster(self.metrics_server),
            ingress=self.ingress.model_copy(update={"mode": cluster(self.ingress.mode)}),
            cert_manager=self.cert_manager.model_copy(update={"mode": cluster(self.cert_manager.mode)}),
        )


class Quota(_Strict):
    cpu: Quantity
    memory: Quantity
    pods: int = Field(ge=1)


class EnvironmentSpec(_Strict):
    description: str
    image_repository: str = Field(pattern=r"^[a-z0-9][a-z0-9._/:-]*[a-z0-9]$")  # where builds are pushed
    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = "INFO"
    settings: dict[str, SettingValue] = {}  # non-secret env for every service
    services: dict[str, ServiceRelease]
    postgres: Postgres
    redis: Redis
    quota: Quota
    monitoring: Monitoring = Monitoring()
    addons: Addons = Addons()


class StackSettings(BaseModel):
    """Plain values of Pulumi.<stack>.yaml (keys `commerce-platform:<camelCase>`)."""

    model_config = ConfigDict(extra="forbid", frozen=True, alias_generator=to_camel, populate_by_name=True)

    kube_context: str = Field(min_length=1)  # explicit: never whatever context the machine happens to have
    namespace: str = Field(pattern=r"^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$")
    domain: str = Field(pattern=r"^[a-z0-9]([-a-z0-9.]*[a-z0-9])?$")
    k8s_version: str = Field(default=DEFAULT_K8S_VERSION, alias="k8sVersion")
    ingress_class: str = "traefik"
    ingress_namespace: str = "traefik"
    tls_certificate: str | None = None  # name of the kubernetes.io/tls Secret the Ingress serves
    admin_username: str = "admin"
    # Where this stack's builds are pushed and pulled from, instead of environments/<env>.yaml's image_repository
    # (a local cluster's own registry: .github/kind/up.sh sets localhost:5001/commerce on its dev stack).
    image_repository: str | None = Field(default=None, pattern=r"^[a-z0-9][a-z0-9._/:-]*[a-z0-9]$")

    @field_validator("k8s_version")
    @classmethod
    def _supported_version(cls, value: str) -> str:
        supported = supported_k8s_versions()
        if value not in supported:
            raise ValueError(f"unsupported version {value!r}; allowed: {', '.join(supported)}")
        return value


# Keys whose values are secrets live in Pulumi config too but never in StackSettings (see secrets.py).
SECRET_STACK_KEYS = frozenset({"kubeconfig"})


# The Kubernetes minor versions the tooling's validator (kubernetes-validate, pinned in uv.lock) ships strict schemas
# for. A literal here so the program does not depend on the validator; tests/platform/test_render.py checks it
# equals the installed kubernetes-validate's list.
SUPPORTED_K8S_VERSIONS = tuple(f"1.{minor}" for minor in range(25, 38))


def supported_k8s_versions() -> tuple[str, ...]:
    """Minor versions `ops render` validates against (kubernetes-validate's strict schemas, offline)."""
    return SUPPORTED_K8S_VERSIONS


@dataclass(frozen=True)
class Environment:
    name: str  # the stack name: dev, prod, pr-42
    base: str  # the environments/ file it comes from (pr-N → dev)
    spec: EnvironmentSpec
    stack: StackSettings

    @property
    def is_review(self) -> bool:
        return self.name != self.base

    @property
    def is_prod(self) -> bool:
        return self.name == "prod"


def did_you_mean(word: str, choices: list[str]) -> str:
    """` (did you mean 'autoscaling'?)` for the closest of `choices`, or "" when none is close."""
    lowered = {choice.lower(): choice for choice in choices}
    close = difflib.get_close_matches(word.lower(), list(lowered), n=1, cutoff=0.7)
    return f" (did you mean {lowered[close[0]]!r}?)" if close else ""


def _one_line(
    file: str, exc: ValidationError, model: type[BaseModel], prefix: str = ""
) -> EnvironmentConfigError:
    errors = exc.errors()
    # A misspelt key shows up twice (unknown key + missing key): report the unknown one, with the suggestion.
    err = next((e for e in errors if e["type"] == "extra_forbidden"), errors[0])
    loc = [str(p) for p in err["loc"]]
    key = prefix + (".".join(loc) or "(top level)")
    if err["type"] == "extra_forbidden":
        allowed = _allowed_keys(model, loc[:-1])
        hint = did_you_mean(loc[-1], allowed)
        return EnvironmentConfigError(
            f"{file}: unknown key {key!r}{hint}; allowed keys: {', '.join(allowed)}"
        )
    if err["type"] == "missing":
        return EnvironmentConfigError(f"{file}: missing required key {key!r}")
    if _is_quantity(model, loc):
        return EnvironmentConfigError(f"{file}: {key}: {_quantity_hint(loc[-1], err['input'])}")
    message = err["msg"].removeprefix("Value error, ")
    if err["type"] == "string_pattern_mismatch":
        message = f"{err['input']!r} does not match {err['ctx']['pattern']}"
    return EnvironmentConfigError(f"{file}: {key}: {message}")


def _is_quantity(model: type[BaseModel], loc: list[str]) -> bool:
    field = _model_at(model, loc[:-1]).model_fields.get(loc[-1]) if loc else None
    return field is not None and any(getattr(m, "pattern", None) == QUANTITY for m in field.metadata)


def _quantity_hint(name: str, value: Any) -> str:
    """What a Kubernetes quantity looks like, from the value given: 256 → '256Mi', 0.5 (cpu) → '500m'."""
    number = value if isinstance(value, int | float) and not isinstance(value, bool) else None
    if name == "cpu":
        if isinstance(number, int):
            example = f"'{number}' (cores) or '250m'"
        elif number is not None and 0 < number < 10:
            example = f"'{int(number * 1000)}m' (millicores) or '1' (cores)"
        else:
            example = "'250m' (millicores) or '1' (cores)"
        return f"{value!r} is not a quantity: write it as a string, e.g. {example}"
    text = str(value)
    digits = re.match(r"\s*([0-9]+(\.[0-9]+)?)", text)
    rest = text[digits.end() :].upper() if digits else ""
    unit = next((u for u in ("Ki", "Gi", "Ti") if u[0] in rest), "Mi")
    example = f"'{digits.group(1)}{unit}'" if digits else "'256Mi'"
    return f"{value!r} is not a quantity: write it as a string with a unit, e.g. {example} (Ki, Mi, Gi, Ti)"


def _model_at(model: type[BaseModel], loc: list[str]) -> type[BaseModel]:
    """The model that holds the keys at `loc` (walking nested models and dicts of models)."""
    for part in loc:
        field = model.model_fields.get(part) or next(
            (f for f in model.model_fields.values() if f.alias == part), None
        )
        annotation = getattr(field, "annotation", None)
        if isinstance(annotation, type) and issubclass(annotation, BaseModel):
            model = annotation
        elif getattr(annotation, "__origin__", None) is dict:
            value_type = annotation.__args__[1]
            if isinstance(value_type, type) and issubclass(value_type, BaseModel):
                model = value_type
    return model


def _allowed_keys(model: type[BaseModel], loc: list[str]) -> list[str]:
    return sorted(f.alias or name for name, f in _model_at(model, loc).model_fields.items())


# libyaml's safe loader where PyYAML has it (the wheels do): the same documents and errors, ~5x faster.
SAFE_LOADER = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


def _read_yaml(path: Path, label: str) -> dict[str, Any]:
    if not path.is_file():
        raise EnvironmentConfigError(f"{label}: file not found")
    try:
        data = yaml.load(path.read_text(), Loader=SAFE_LOADER) or {}
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" (line {mark.line + 1})" if mark else ""
        raise EnvironmentConfigError(
            f"{label}: not valid YAML{where}: {getattr(exc, 'problem', exc)}"
        ) from None
    if not isinstance(data, dict):
        raise EnvironmentConfigError(f"{label}: expected a mapping at the top level")
    return data


def stack_file_values(stack: str, repo_root: Path) -> dict[str, Any]:
    """Plain `commerce-platform:*` values of Pulumi.<stack>.yaml (secure values are left to secrets.py)."""
    label = f"Pulumi.{stack}.yaml"
    config = _read_yaml(repo_root / label, label).get("config") or {}
    values = {}
    for key, value in config.items():
        project, _, name = str(key).partition(":")
        if project != PROJECT or isinstance(value, dict) or name in SECRET_STACK_KEYS:
            continue  # other providers' keys and `secure:` entries
        values[name] = value
    return values


def declared_secrets(stack: str, repo_root: Path) -> dict[str, str]:
    """Key -> ciphertext of the values stored encrypted (`secure:`) in Pulumi.<stack>.yaml."""
    label = f"Pulumi.{stack}.yaml"
    config = _read_yaml(repo_root / label, label).get("config") or {}
    return {
        str(k).partition(":")[2]: str(v["secure"])
        for k, v in config.items()
        if str(k).startswith(f"{PROJECT}:") and isinstance(v, dict) and "secure" in v
    }


def _review_spec(dev: EnvironmentSpec) -> EnvironmentSpec:
    """pr-<N>: dev's release, one replica each, minimal sizing, nothing retained, dev's cluster add-ons."""
    services = {
        name: svc.model_copy(
            update={
                "autoscaling": Autoscaling(min=1, max=1),
                "resources": Resources(
                    cpu="50m", memory=svc.resources.memory, memory_limit=svc.resources.limit_memory
                ),
            }
        )
        for name, svc in dev.services.items()
    }
    return dev.model_copy(
        update={
            "description": "ephemeral review environment derived from dev",
            "services": services,
            "postgres": dev.postgres.model_copy(update={"storage": "1Gi", "retain_volume": False}),
            "quota": Quota(cpu="4", memory="8Gi", pods=30),
            "addons": dev.addons.provided_by_cluster(),
        }
    )


def _check_services(file: str, spec: EnvironmentSpec, services: tuple[catalogue.ServiceSpec, ...]) -> None:
    known = [s.name for s in services]
    for name in spec.services:
        if name not in known:
            raise EnvironmentConfigError(
                f"{file}: services.{name}: unknown service{did_you_mean(name, known)}; allowed: {', '.join(known)}"
            )
    for name in known:
        if name not in spec.services:
            raise EnvironmentConfigError(f"{file}: services: missing required key {name!r}")
    check_settings_overrides(file, "settings", spec.settings, services)
    for s in services:
        check_settings_overrides(file, f"services.{s.name}.settings", spec.services[s.name].settings, (s,))


# The env vars service_env computes from the environment and the addresses; environments/ may not override them.
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


def setting_text(value: object) -> str:
    """A setting's value as the env var text the service reads (booleans as pydantic reads them back)."""
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def check_settings_overrides(
    file: str, key: str, overrides: dict[str, SettingValue], services: tuple[catalogue.ServiceSpec, ...]
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


def _check_value(file: str, key: str, spec: catalogue.ServiceSpec, name: str, value: SettingValue) -> None:
    """The value as the service will read it (the env var's text) must parse as its settings field: a bad value
    fails the render and `ops policy`, not the pod's start-up."""
    field = spec.settings.model_fields.get(name.lower())
    if field is None:
        return
    try:
        _adapter(spec.settings, name.lower()).validate_python(setting_text(value))
    except ValidationError as exc:
        error = exc.errors()[0]
        raise EnvironmentConfigError(
            f"{file}: {key}: {value!r} is not valid for {spec.name} ({spec.settings.__name__}.{name.lower()}: "
            f"{_type_name(field.annotation)}): {error['msg']}; fix: set it to a valid {_type_name(field.annotation)}"
        ) from None


@cache
def _adapter(settings: type[BaseModel], field: str) -> TypeAdapter:
    """The validator of one settings field (built once: a render loads the environment more than once)."""
    return TypeAdapter(settings.model_fields[field].annotation)


def _type_name(annotation: object) -> str:
    return getattr(annotation, "__name__", None) or str(annotation).replace("typing.", "")


def parse_environment(
    file: str, data: dict[str, Any], services: tuple[catalogue.ServiceSpec, ...] = catalogue.SERVICES
) -> EnvironmentSpec:
    known = [s.name for s in services]
    for name in data.get("services") or {} if isinstance(data.get("services"), dict) else {}:
        if name not in known:  # before the schema, so a typo'd name is reported as such
            raise EnvironmentConfigError(
                f"{file}: services.{name}: unknown service{did_you_mean(str(name), known)}; "
                f"allowed: {', '.join(known)}"
            )
    try:
        spec = EnvironmentSpec.model_validate(data)
    except ValidationError as exc:
        raise _one_line(file, exc, EnvironmentSpec) from None
    _check_services(file, spec, services)
    return spec


def parse_stack(file: str, values: dict[str, Any]) -> StackSettings:
    try:
        return StackSettings.model_validate(values)
    except ValidationError as exc:
        raise _one_line(file, exc, StackSettings, prefix=f"{PROJECT}:") from None


def known_environments(repo_root: Path) -> list[str]:
    """The environments defined in the repo (see ENVIRONMENT_RULE), without the pr-<N> review stacks."""
    return sorted(
        p.stem
        for p in (repo_root / "environments").glob("*.yaml")
        if (repo_root / f"Pulumi.{p.stem}.yaml").is_file()
    )


def check_environment(name: str, repo_root: Path) -> None:
    """One line when `name` is not an environment (ENVIRONMENT_RULE), saying which file is missing."""
    if REVIEW_STACK.match(name):
        return
    env_file = (repo_root / "environments" / f"{name}.yaml").is_file()
    stack_file = (repo_root / f"Pulumi.{name}.yaml").is_file()
    if env_file and stack_file:
        return
    allowed = ", ".join([*known_environments(repo_root), "pr-<N>"])
    if env_file or stack_file:
        have, missing = (
            (f"environments/{name}.yaml", f"Pulumi.{name}.yaml")
            if env_file
            else (f"Pulumi.{name}.yaml", f"environments/{name}.yaml")
        )
        raise EnvironmentConfigError(
            f"{missing}: file not found; {have} alone does not make {name!r} an environment: add {missing} "
            f"(copy the dev one) or remove {have} ({ENVIRONMENT_RULE})"
        )
    hint = did_you_mean(name, known_environments(repo_root))
    raise EnvironmentConfigError(
        f"unknown environment {name!r}{hint}; allowed: {allowed} ({ENVIRONMENT_RULE})"
    )


def load_environment(
    name: str,
    repo_root: Path | None = None,
    stack_values: dict[str, Any] | None = None,
    services: tuple[catalogue.ServiceSpec, ...] = catalogue.SERVICES,
) -> Environment:
    """The validated environment for stack `name` (dev, prod or pr-<N>).

    `stack_values` overlays the Pulumi.<stack>.yaml values (the program passes what the Pulumi engine gave it).
    """
    root = Path(repo_root) if repo_root else repo_root_default()
    review = REVIEW_STACK.match(name)
    base = "dev" if review else name
    env_file = root / "environments" / f"{base}.yaml"
    label = f"environments/{base}.yaml"
    check_environment(name, root)
    spec = parse_environment(label, _read_yaml(env_file, label), services)
    values = stack_file_values(base, root)
    if review:
        number = review.group(1)
        spec = _review_spec(spec)
        values = {
            **values,
            "namespace": f"{values.get('namespace', '')}-pr-{number}",
            "domain": f"pr-{number}.{values.get('domain', '')}",
        }
        values.pop("tlsCertificate", None)
    values.update(stack_values or {})
    stack = parse_stack(
        f"Pulumi.{name}.yaml" if not review else f"Pulumi.{base}.yaml (derived for {name})", values
    )
    if stack.image_repository:
        spec = spec.model_copy(update={"image_repository": stack.image_repository})
    if name == "prod":
        for svc, release in spec.services.items():
            if release.builds:
                raise EnvironmentConfigError(
                    f"{label}: services.{svc}.release: prod accepts pinned digests only ('repo@sha256:<64 hex>'), not 'build'"
                )
        for part in ("postgres", "redis"):
            mode = getattr(spec, part)
            if mode.mode == "in-cluster" and "@sha256:" not in mode.image:
                raise EnvironmentConfigError(
                    f"{label}: {part}.image: prod accepts pinned digests only, got {mode.image!r}"
                )
    return Environment(name=name, base=base, spec=spec, stack=stack)
