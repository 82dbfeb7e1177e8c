"""Reliability and hygiene rules on single resources (kube-score / Polaris / checkov territory): probes,
resources, images, namespaces, service accounts, secrets in env, Service exposure and labels."""

from __future__ import annotations

import re
from collections.abc import Iterator
from functools import cache

from commerce_platform import catalogue
from commerce_platform.policy.k8s import (
    BATCH_KINDS,
    WORKLOAD_KINDS,
    app_containers,
    containers,
    dig,
    is_namespaced,
    items,
    plain,
    pod_labels,
    pod_spec,
)
from commerce_platform.policy.model import PRODUCTION, Enforcement, Resource, Severity, resource_rule
from commerce_platform.policy.runner import environment_from_urn

NAME_LABEL = "app.kubernetes.io/name"
COMPONENT_LABEL = "app.kubernetes.io/component"
RECOMMENDED_LABELS = (
    NAME_LABEL,
    "app.kubernetes.io/instance",
    COMPONENT_LABEL,
    "app.kubernetes.io/part-of",
    "app.kubernetes.io/managed-by",
)
# The one workload allowed to expose a Service outside the cluster.
INGRESS_CONTROLLER_COMPONENT = "ingress-controller"
EXPOSED_SERVICE_TYPES = frozenset({"LoadBalancer", "NodePort"})

DIGEST = re.compile(r"@sha256:[0-9a-f]{64}$")
# Last word of an env var name that marks its value as a secret (JWT_PUBLIC_KEY is exempt: public by definition).
SECRET_NAME_WORDS = frozenset(
    {"PASSWORD", "PASSWD", "SECRET", "TOKEN", "KEY", "APIKEY", "CREDENTIAL", "CREDENTIALS", "DSN"}
)
URL_WITH_PASSWORD = re.compile(r"://[^/@\s:]+:[^/@\s]+@")


@resource_rule(
    id="probes-present",
    severity=Severity.HIGH,
    description="Long-running containers must define both a liveness and a readiness probe.",
)
def probes_present(resource: Resource) -> Iterator[str]:
    spec = pod_spec(resource)
    if not spec or resource.kind in BATCH_KINDS:
        return
    for container in app_containers(spec):
        for probe in ("livenessProbe", "readinessProbe"):
            if not container.get(probe):
                yield f"container {container.get('name')!r} has no {probe}"


@resource_rule(
    id="probes-distinct",
    severity=Severity.MEDIUM,
    description="Liveness and readiness probes must differ (a failing dependency must not restart pods).",
)
def probes_distinct(resource: Resource) -> Iterator[str]:
    spec = pod_spec(resource)
    if not spec or resource.kind in BATCH_KINDS:
        return
    for container in app_containers(spec):
        liveness, readiness = container.get("livenessProbe"), container.get("readinessProbe")
        if liveness and readiness and plain(liveness) == plain(readiness):
            yield f"container {container.get('name')!r} uses the same probe for liveness and readiness"


@resource_rule(
    id="resource-requests", severity=Severity.HIGH, description="Every container must request CPU and memory."
)
def resource_requests(resource: Resource) -> Iterator[str]:
    spec = pod_spec(resource)
    for container in containers(spec) if spec else ():
        requests = dig(container, "resources", "requests") or {}
        missing = [r for r in ("cpu", "memory") if not requests.get(r)]
        if missing:
            yield f"container {container.get('name')!r} requests no {' or '.join(missing)}"


@resource_rule(
    id="memory-limit", severity=Severity.HIGH, description="Every container must set a memory limit."
)
def memory_limit(resource: Resource) -> Iterator[str]:
    spec = pod_spec(resource)
    for container in containers(spec) if spec else ():
        if not dig(container, "resources", "limits", "memory"):
            yield f"container {container.get('name')!r} has no memory limit"


def image_tag(image: str) -> str | None:
    """The tag of an image reference (None when untagged); `host:port/repo` is not a tag."""
    reference = image.split("@", 1)[0]
    last = reference.rsplit("/", 1)[-1]
    return last.split(":", 1)[1] if ":" in last else None


@resource_rule(
    id="image-tag-pinned",
    severity=Severity.HIGH,
    description="Images must carry an explicit tag other than `latest` (or a digest).",
)
def image_tag_pinned(resource: Resource) -> Iterator[str]:
    spec = pod_spec(resource)
    for container in containers(spec) if spec else ():
        image = container.get("image") or ""
        if DIGEST.search(image):
            continue
        tag = image_tag(image)
        if tag is None:
            yield f"container {container.get('name')!r} image {image!r} has no tag"
        elif tag == "latest":
            yield f"container {container.get('name')!r} image {image!r} uses the mutable `latest` tag"


@resource_rule(
    id="image-digest-pinned",
    severity=Severity.HIGH,
    environments=PRODUCTION,
    description="In production every image must be pinned by sha256 digest.",
)
def image_digest_pinned(resource: Resource) -> Iterator[str]:
    spec = pod_spec(resource)
    for container in containers(spec) if spec else ():
        image = container.get("image") or ""
        if not DIGEST.search(image):
            yield f"container {container.get('name')!r} image {image!r} is not pinned by digest"


@cache
def environment_registry(environment: str) -> str | None:
    """environments/<env>.yaml's image_repository (pr-<N>: dev's), or None for an environment not defined here."""
    from commerce_platform.environments import EnvironmentConfigError, load_environment

    try:
        return load_environment(environment).spec.image_repository
    except (EnvironmentConfigError, OSError):
        return None


@resource_rule(
    id="image-from-environment-registry",
    severity=Severity.HIGH,
    description="A service's pods pull only from their environment's own registry (image_repository in "
    "environments/<env>.yaml): prod never runs a reference into dev's registry (`ops promote --copy-images`).",
)
def image_from_environment_registry(resource: Resource) -> Iterator[str]:
    spec = pod_spec(resource)
    service = pod_labels(resource).get(NAME_LABEL) or resource.labels.get(NAME_LABEL)
    if spec is None or service not in catalogue.BY_NAME or not resource.urn:
        return
    environment = environment_from_urn(resource.urn)
    registry = environment_registry(environment)
    if registry is None:
        return
    for container in containers(spec):
        image = str(container.get("image") or "")
        if not image.startswith(f"{registry}/"):
            yield (
                f"container {container.get('name')!r} image {image!r} is not from {environment}'s registry "
                f"{registry}"
            )


@resource_rule(
    id="namespace-not-default",
    severity=Severity.MEDIUM,
    description="Namespaced objects must name their namespace explicitly and not use `default`.",
)
def namespace_not_default(resource: Resource) -> Iterator[str]:
    if not is_namespaced(resource):
        return
    namespace = resource.namespace
    if not namespace:
        yield "metadata.namespace is not set (would land in the provider's or the default namespace)"
    elif namespace == "default":
        yield "object is in the `default` namespace"


@resource_rule(
    id="service-account-not-default",
    severity=Severity.MEDIUM,
    description="Pods must run under their own ServiceAccount, not `default`.",
)
def service_account_not_default(resource: Resource) -> Iterator[str]:
    spec = pod_spec(resource)
    if not spec:
        return
    account = spec.get("serviceAccountName") or spec.get("serviceAccount")
    if not account or account == "default":
        yield "pod runs under the `default` ServiceAccount"


def looks_secret(env_name: str) -> bool:
    words = env_name.upper().split("_")
    return words[-1] in SECRET_NAME_WORDS and "PUBLIC" not in words


def catalogue_secret_names(resource: Resource, container_name: str | None) -> set[str]:
    """Env var names the catalogue's settings class marks as SecretStr, for the service this pod runs."""
    candidates = {pod_labels(resource).get(NAME_LABEL), resource.labels.get(NAME_LABEL), container_name}
    names: set[str] = set()
    for service in candidates:
        if service in catalogue.BY_NAME:
            names |= catalogue.get(service).secret_env_var_names
    return names


@resource_rule(
    id="secrets-from-secret-refs",
    severity=Severity.CRITICAL,
    description="Secret env vars (SecretStr settings, secret-looking names, URLs with passwords) must "
    "come from valueFrom.secretKeyRef, never a plain value.",
)
def secrets_from_secret_refs(resource: Resource) -> Iterator[str]:
    spec = pod_spec(resource)
    for container in containers(spec) if spec else ():
        name = container.get("name")
        secret_names = catalogue_secret_names(resource, name)
        for env in items(container.get("env")):
            env_name = env.get("name") or ""
            value = env.get("value")
            if isinstance(value, str) and URL_WITH_PASSWORD.search(value):
                yield f"container {name!r} env {env_name} holds a URL with a plaintext password"
                continue
            if env_name not in secret_names and not looks_secret(env_name):
                continue
            if value is not None:
                yield f"container {name!r} env {env_name} is a secret set as a plain value"
            elif not dig(env, "valueFrom", "secretKeyRef"):
                yield f"container {name!r} env {env_name} is a secret not read from a secretKeyRef"


def is_ingress_controller(resource: Resource) -> bool:
    return resource.labels.get(COMPONENT_LABEL) == INGRESS_CONTROLLER_COMPONENT


@resource_rule(
    id="service-not-exposed",
    severity=Severity.HIGH,
    description="Services must not be LoadBalancer or NodePort, except the ingress controller's.",
)
def service_not_exposed(resource: Resource) -> Iterator[str]:
    if resource.kind != "Service":
        return
    service_type = dig(resource.props, "spec", "type") or "ClusterIP"
    if service_type in EXPOSED_SERVICE_TYPES and not is_ingress_controller(resource):
        yield f"Service type {service_type} exposes it outside the cluster; only the ingress controller may"


@resource_rule(
    id="recommended-labels",
    severity=Severity.LOW,
    enforcement=Enforcement.ADVISORY,
    description=f"Workloads and Services carry the recommended labels ({', '.join(RECOMMENDED_LABELS)}); "
    "pod templates carry app.kubernetes.io/name.",
)
def recommended_labels(resource: Resource) -> Iterator[str]:
    if resource.kind not in WORKLOAD_KINDS | {"Service"}:
        return
    missing = [label for label in RECOMMENDED_LABELS if not resource.labels.get(label)]
    if missing:
        yield f"missing labels {', '.join(missing)}"
    if resource.kind != "Pod" and pod_spec(resource) is not None and not pod_labels(resource).get(NAME_LABEL):
        yield f"pod template has no {NAME_LABEL} label"
