"""Read-only helpers over Kubernetes objects.

Everything here accepts any Mapping / Sequence, never assumes dict / list: under CrossGuard the properties are
read-only proxies that raise `UnknownValueError` when a value is not known during preview.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from typing import Any

from commerce_platform.policy.model import Resource

POD_CONTROLLERS = frozenset({"Deployment", "StatefulSet", "DaemonSet", "ReplicaSet", "Job"})
WORKLOAD_KINDS = POD_CONTROLLERS | {"Pod", "CronJob"}
# Run-to-completion pods: probes make no sense for them.
BATCH_KINDS = frozenset({"Job", "CronJob"})
CLUSTER_SCOPED_KINDS = frozenset(
    {
        "Namespace",
        "Node",
        "PersistentVolume",
        "StorageClass",
        "IngressClass",
        "PriorityClass",
        "RuntimeClass",
        "ClusterRole",
        "ClusterRoleBinding",
        "CustomResourceDefinition",
        "APIService",
        "CSIDriver",
        "MutatingWebhookConfiguration",
        "ValidatingWebhookConfiguration",
    }
)
CONTAINER_LISTS = ("initContainers", "containers", "ephemeralContainers")


def is_map(value: Any) -> bool:
    return isinstance(value, Mapping)


def is_seq(value: Any) -> bool:
    return isinstance(value, Sequence) and not isinstance(value, str | bytes)


def plain(value: Any) -> Any:
    """A plain dict/list copy, so values can be compared with ==."""
    if is_map(value):
        return {k: plain(v) for k, v in value.items()}
    if is_seq(value):
        return [plain(v) for v in value]
    return value


def dig(obj: Any, *path: str) -> Any:
    for key in path:
        if not is_map(obj):
            return None
        obj = obj.get(key)
    return obj


def items(value: Any) -> Sequence[Any]:
    return value if is_seq(value) else ()


def pod_template(resource: Resource) -> Mapping[str, Any] | None:
    """The pod (template) a workload runs: {metadata, spec}; None for anything that runs no pods."""
    kind, props = resource.kind, resource.props
    if kind == "Pod":
        return props
    if kind in POD_CONTROLLERS:
        return dig(props, "spec", "template")
    if kind == "CronJob":
        return dig(props, "spec", "jobTemplate", "spec", "template")
    return None


def pod_spec(resource: Resource) -> Mapping[str, Any] | None:
    template = pod_template(resource)
    spec = dig(template, "spec")
    return spec if is_map(spec) else None


def pod_labels(resource: Resource) -> Mapping[str, Any]:
    return dig(pod_template(resource), "metadata", "labels") or {}


def containers(
    spec: Mapping[str, Any], lists: Sequence[str] = CONTAINER_LISTS
) -> Iterator[Mapping[str, Any]]:
    for key in lists:
        for container in items(spec.get(key)):
            if is_map(container):
                yield container


def app_containers(spec: Mapping[str, Any]) -> Iterator[Mapping[str, Any]]:
    """The long-running containers (not init / ephemeral ones)."""
    return containers(spec, ("containers",))


def effective_security(spec: Mapping[str, Any], container: Mapping[str, Any], key: str) -> Any:
    """A container's securityContext field, falling back to the pod's (the container wins when both are set)."""
    own = dig(container, "securityContext", key)
    return own if own is not None else dig(spec, "securityContext", key)


def is_namespaced(resource: Resource) -> bool:
    return resource.kind is not None and resource.kind not in CLUSTER_SCOPED_KINDS


def selector_matches(selector: Any, labels: Mapping[str, Any]) -> bool:
    """Kubernetes label-selector semantics (matchLabels + matchExpressions); an empty selector matches all."""
    if not is_map(selector):
        return False
    for key, value in (selector.get("matchLabels") or {}).items():
        if labels.get(key) != value:
            return False
    for expression in items(selector.get("matchExpressions")):
        key, operator = expression.get("key"), expression.get("operator")
        values = list(items(expression.get("values")))
        present = key in labels
        if operator == "In" and not (present and labels[key] in values):
            return False
        if operator == "NotIn" and present and labels[key] in values:
            return False
        if operator == "Exists" and not present:
            return False
        if operator == "DoesNotExist" and present:
            return False
    return True


def same_namespace(a: Resource, b: Resource) -> bool:
    return (a.namespace or "default") == (b.namespace or "default")


def object_name(resource: Resource) -> str:
    return resource.metadata.get("name") or resource.name


def as_number(value: Any) -> float | None:
    """Ints arrive as floats under Pulumi mocks; percentages stay strings."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int | float):
        return float(value)
    return None
