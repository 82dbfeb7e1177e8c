"""Pod Security Standards "restricted" rules, applied to every pod template (Pods, Deployments, StatefulSets,
DaemonSets, ReplicaSets, Jobs, CronJobs)."""

from __future__ import annotations

from collections.abc import Iterator

from commerce_platform.policy.k8s import (
    containers,
    dig,
    effective_security,
    is_map,
    items,
    pod_spec,
)
from commerce_platform.policy.model import Resource, Severity, resource_rule

# PSS restricted: the only volume types a pod may use.
ALLOWED_VOLUME_TYPES = frozenset(
    {
        "configMap",
        "csi",
        "downwardAPI",
        "emptyDir",
        "ephemeral",
        "persistentVolumeClaim",
        "projected",
        "secret",
    }
)
ALLOWED_ADDED_CAPABILITIES = frozenset({"NET_BIND_SERVICE"})
HOST_NAMESPACES = ("hostNetwork", "hostPID", "hostIPC")


@resource_rule(
    id="no-privileged", severity=Severity.CRITICAL, description="Containers must not run privileged."
)
def no_privileged(resource: Resource) -> Iterator[str]:
    spec = pod_spec(resource)
    for container in containers(spec) if spec else ():
        if dig(container, "securityContext", "privileged") is True:
            yield f"container {container.get('name')!r} is privileged"


@resource_rule(
    id="no-privilege-escalation",
    severity=Severity.HIGH,
    description="Containers must set securityContext.allowPrivilegeEscalation: false.",
)
def no_privilege_escalation(resource: Resource) -> Iterator[str]:
    spec = pod_spec(resource)
    for container in containers(spec) if spec else ():
        if dig(container, "securityContext", "allowPrivilegeEscalation") is not False:
            yield f"container {container.get('name')!r} does not set allowPrivilegeEscalation: false"


@resource_rule(
    id="run-as-non-root",
    severity=Severity.HIGH,
    description="Pods or all their containers must set runAsNonRoot: true.",
)
def run_as_non_root(resource: Resource) -> Iterator[str]:
    spec = pod_spec(resource)
    for container in containers(spec) if spec else ():
        if effective_security(spec, container, "runAsNonRoot") is not True:
            yield f"container {container.get('name')!r} may run as root (runAsNonRoot is not true)"


@resource_rule(
    id="no-root-uid",
    severity=Severity.HIGH,
    description="Neither the pod nor a container may set runAsUser: 0.",
)
def no_root_uid(resource: Resource) -> Iterator[str]:
    spec = pod_spec(resource)
    if not spec:
        return
    if dig(spec, "securityContext", "runAsUser") == 0:
        yield "pod securityContext sets runAsUser: 0"
    for container in containers(spec):
        if dig(container, "securityContext", "runAsUser") == 0:
            yield f"container {container.get('name')!r} sets runAsUser: 0"


@resource_rule(
    id="drop-all-capabilities",
    severity=Severity.HIGH,
    description="Containers must drop ALL capabilities and add none but NET_BIND_SERVICE.",
)
def drop_all_capabilities(resource: Resource) -> Iterator[str]:
    spec = pod_spec(resource)
    for container in containers(spec) if spec else ():
        capabilities = dig(container, "securityContext", "capabilities") or {}
        if "ALL" not in list(items(capabilities.get("drop"))):
            yield f"container {container.get('name')!r} does not drop ALL capabilities"
        added = set(items(capabilities.get("add"))) - ALLOWED_ADDED_CAPABILITIES
        if added:
            yield f"container {container.get('name')!r} adds capabilities {sorted(added)}"


@resource_rule(
    id="seccomp-runtime-default",
    severity=Severity.HIGH,
    description="Pods or all their containers must use the RuntimeDefault (or Localhost) seccomp profile.",
)
def seccomp_runtime_default(resource: Resource) -> Iterator[str]:
    spec = pod_spec(resource)
    for container in containers(spec) if spec else ():
        profile = effective_security(spec, container, "seccompProfile")
        kind = profile.get("type") if is_map(profile) else None
        if kind not in ("RuntimeDefault", "Localhost"):
            yield f"container {container.get('name')!r} has seccomp profile {kind or 'unset'}, not RuntimeDefault"


@resource_rule(
    id="no-host-namespaces",
    severity=Severity.CRITICAL,
    description="Pods must not share the host's network, PID or IPC namespace.",
)
def no_host_namespaces(resource: Resource) -> Iterator[str]:
    spec = pod_spec(resource)
    for key in HOST_NAMESPACES if spec else ():
        if spec.get(key) is True:
            yield f"pod sets {key}: true"


@resource_rule(id="no-host-ports", severity=Severity.HIGH, description="Containers must not bind host ports.")
def no_host_ports(resource: Resource) -> Iterator[str]:
    spec = pod_spec(resource)
    for container in containers(spec) if spec else ():
        for port in items(container.get("ports")):
            if port.get("hostPort"):
                yield f"container {container.get('name')!r} binds hostPort {port.get('hostPort')}"


@resource_rule(
    id="no-host-path", severity=Severity.CRITICAL, description="Pods must not mount hostPath volumes."
)
def no_host_path(resource: Resource) -> Iterator[str]:
    spec = pod_spec(resource)
    for volume in items(spec.get("volumes")) if spec else ():
        if volume.get("hostPath") is not None:
            yield f"volume {volume.get('name')!r} is a hostPath volume"


@resource_rule(
    id="restricted-volume-types",
    severity=Severity.HIGH,
    description="Pods may only use the volume types PSS restricted allows "
    f"({', '.join(sorted(ALLOWED_VOLUME_TYPES))}).",
)
def restricted_volume_types(resource: Resource) -> Iterator[str]:
    spec = pod_spec(resource)
    for volume in items(spec.get("volumes")) if spec else ():
        sources = {key for key in volume if key != "name"}
        disallowed = sorted(sources - ALLOWED_VOLUME_TYPES)
        if disallowed:
            yield f"volume {volume.get('name')!r} uses disallowed type {', '.join(disallowed)}"


@resource_rule(
    id="read-only-root-filesystem",
    severity=Severity.MEDIUM,
    description="Containers must mount their root filesystem read-only.",
)
def read_only_root_filesystem(resource: Resource) -> Iterator[str]:
    spec = pod_spec(resource)
    for container in containers(spec) if spec else ():
        if dig(container, "securityContext", "readOnlyRootFilesystem") is not True:
            yield f"container {container.get('name')!r} does not set readOnlyRootFilesystem: true"
