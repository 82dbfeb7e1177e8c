"""The diff engine: two rendered graphs in, a plan of resource changes out.

Pure functions over the `graph.json` structure (`{"environment", "resources": [{"urn", "type", "name", "parent",
"dependencies", "props"}]}`). Resources are matched by URN. A resource whose props differ is an update, or a
replace when any changed field is one the Kubernetes API (or the Pulumi provider) will not patch in place.
"""

from __future__ import annotations

import copy
import json
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from functools import cache
from typing import Any, Literal

Action = Literal["replace", "delete", "create", "update"]
ACTIONS: tuple[Action, ...] = (
    "replace",
    "delete",
    "create",
    "update",
)  # also the report order: riskiest first

SECRET = "[secret]"
# How the Pulumi SDK marks a secret value when it is serialised; such a value is only ever shown as SECRET.
_PULUMI_SECRET_SIG = ("4dabf18193072939515e22adb298388d", "1b47061264138c4ac30d75fd1eb44270")


class _Absent:
    """The 'before' of an added field and the 'after' of a removed one."""

    def __repr__(self) -> str:
        return "(absent)"


ABSENT: Any = _Absent()

# A path is a tuple of segments: a dict key (str), a list index (int) or a list item matched by name (("name", x)).
Segment = str | int | tuple[str, str]
Path = tuple[Segment, ...]


@dataclass(frozen=True)
class FieldChange:
    path: Path
    before: Any
    after: Any
    forces_replace: bool = False

    @property
    def dotted(self) -> str:
        return format_path(self.path)


@dataclass(frozen=True)
class ResourceChange:
    action: Action
    urn: str
    type: str
    name: str
    fields: tuple[FieldChange, ...] = ()

    @property
    def kind(self) -> str:
        return short_type(self.type)

    @property
    def replace_reasons(self) -> tuple[str, ...]:
        return tuple(f.dotted for f in self.fields if f.forces_replace)


@dataclass(frozen=True)
class Plan:
    environment: str
    changes: tuple[ResourceChange, ...]
    unchanged: int
    base_label: str = "base"
    head_label: str = "working tree"
    notes: tuple[str, ...] = field(default=())

    @property
    def empty(self) -> bool:
        return not self.changes

    def counts(self) -> dict[Action, int]:
        counts = dict.fromkeys(ACTIONS, 0)
        for change in self.changes:
            counts[change.action] += 1
        return counts


# --- immutable fields -------------------------------------------------------------------------------------------

# StatefulSet spec fields the API server lets you patch; every other spec field is immutable.
_STATEFULSET_MUTABLE_SPEC = {
    "replicas",
    "ordinals",
    "template",
    "updateStrategy",
    "persistentVolumeClaimRetentionPolicy",
    "minReadySeconds",
}
# Prefixes (under the object root) whose change cannot be applied in place, per Kubernetes kind.
_IMMUTABLE_PREFIXES: dict[str, tuple[Path, ...]] = {
    "Deployment": (("spec", "selector"),),
    "ReplicaSet": (("spec", "selector"),),
    "DaemonSet": (("spec", "selector"),),
    "Job": (("spec", "selector"), ("spec", "template"), ("spec", "completionMode")),
    "Service": (("spec", "clusterIP"), ("spec", "clusterIPs")),
    "RoleBinding": (("roleRef",),),
    "ClusterRoleBinding": (("roleRef",),),
    "PersistentVolume": (("spec", "persistentVolumeSource"),),
    # The Pulumi Kubernetes provider replaces ConfigMaps and Secrets on content changes unless the provider is
    # configured with enableConfigMapMutable / enableSecretMutable; the program does not set those.
    "ConfigMap": (("data",), ("binaryData",), ("immutable",)),
    "Secret": (("data",), ("stringData",), ("type",), ("immutable",)),
}


def forces_replace(kind: str, path: Path) -> bool:
    """Whether changing `path` of a `kind` object means delete-and-recreate rather than a patch."""
    if path[:2] in (("metadata", "name"), ("metadata", "namespace")):
        return True
    if kind == "StatefulSet" and len(path) >= 2 and path[0] == "spec":
        return path[1] not in _STATEFULSET_MUTABLE_SPEC
    if kind == "PersistentVolumeClaim" and len(path) >= 2 and path[0] == "spec":
        return path[:3] != ("spec", "resources", "requests")  # only a storage request may grow in place
    return any(path[: len(prefix)] == prefix for prefix in _IMMUTABLE_PREFIXES.get(kind, ()))


# --- redaction ----------------------------------------------------------------------------------------------------


@cache
def _secret_env_names() -> frozenset[str]:
    from commerce_platform.catalogue import SERVICES

    return frozenset(name for spec in SERVICES for name in spec.secret_env_var_names)


def is_pulumi_secret(value: Any) -> bool:
    return isinstance(value, Mapping) and value.get(_PULUMI_SECRET_SIG[0]) == _PULUMI_SECRET_SIG[1]


def _must_redact(kind: str, path: Path, value: Any) -> bool:
    """Render already redacts; this is the second lock so the diff can never print a secret it was handed."""
    if value is ABSENT:
        return False
    if is_pulumi_secret(value):
        return True
    if kind == "Secret" and path and path[0] in ("data", "stringData"):
        return True
    # A plain env entry for a setting declared secret: {"name": "JWT_PRIVATE_KEY", "value": ...}
    return len(path) >= 2 and path[-1] == "value" and _is_named(path[-2], _secret_env_names())


def redact(kind: str, path: Path, value: Any) -> Any:
    """`value` with every secret leaf inside it (at any depth) replaced by SECRET."""
    if _must_redact(kind, path, value):
        return SECRET
    if isinstance(value, Mapping):
        return {k: redact(kind, (*path, k), v) for k, v in value.items()}
    if isinstance(value, list):
        named = _keyed_by_name(value) is not None
        return [redact(kind, (*path, ("name", v["name"]) if named else i), v) for i, v in enumerate(value)]
    return value


def _child(node: Any, key: str) -> Any:
    if isinstance(node, dict):
        return node.get(key)
    if isinstance(node, list) and key.isdigit() and int(key) < len(node):
        return node[int(key)]
    return None


def mask_secret_pointers(props: Mapping[str, Any], pointers: list[str]) -> Any:
    """A copy of `props` with the value at each JSON pointer the render marked secret replaced by SECRET."""
    masked = copy.deepcopy(dict(props))
    for pointer in pointers:
        keys = [p.replace("~1", "/").replace("~0", "~") for p in pointer.split("/")[1:]]
        parent: Any = masked
        for key in keys[:-1]:
            parent = _child(parent, key)
        if not keys or _child(parent, keys[-1]) is None:
            continue
        parent[int(keys[-1]) if isinstance(parent, list) else keys[-1]] = SECRET
    return masked


def _is_named(segment: Segment, names: frozenset[str]) -> bool:
    return isinstance(segment, tuple) and segment[1] in names


# --- diffing -------------------------------------------------------------------------------------------------------


def short_type(pulumi_type: str) -> str:
    """`kubernetes:apps/v1:Deployment` → `Deployment`; `commerce:platform:ServiceDeployment` → `ServiceDeployment`."""
    return pulumi_type.rsplit(":", 1)[-1]


def _keyed_by_name(items: list[Any]) -> dict[str, Any] | None:
    """Lists of named objects (containers, env, ports, volumes) are compared item by name, not position."""
    if not items or not all(isinstance(i, Mapping) and isinstance(i.get("name"), str) for i in items):
        return None
    keyed = {i["name"]: i for i in items}
    return keyed if len(keyed) == len(items) else None


def diff_values(before: Any, after: Any, path: Path = ()) -> Iterator[tuple[Path, Any, Any]]:
    """Yield (path, before, after) for each leaf that differs; ABSENT stands for a missing side."""
    if is_pulumi_secret(before) or is_pulumi_secret(after):
        if before != after:
            yield path, before, after
        return
    if isinstance(before, Mapping) and isinstance(after, Mapping):
        for key in sorted(set(before) | set(after), key=str):
            yield from diff_values(before.get(key, ABSENT), after.get(key, ABSENT), (*path, key))
        return
    if isinstance(before, list) and isinstance(after, list) and before != after:
        old, new = _keyed_by_name(before), _keyed_by_name(after)
        if old is not None and new is not None:
            for name in sorted(set(old) | set(new)):
                yield from diff_values(old.get(name, ABSENT), new.get(name, ABSENT), (*path, ("name", name)))
            return
        if any(isinstance(i, Mapping | list) for i in (*before, *after)) and len(before) == len(after):
            for index, (b, a) in enumerate(zip(before, after, strict=True)):
                yield from diff_values(b, a, (*path, index))
            return
    if before != after:
        yield path, before, after


def diff_resource(kind: str, before: Mapping[str, Any], after: Mapping[str, Any]) -> tuple[FieldChange, ...]:
    changes = []
    for path, old, new in diff_values(before, after):
        changes.append(
            FieldChange(path, redact(kind, path, old), redact(kind, path, new), forces_replace(kind, path))
        )
    return tuple(changes)


def _kubernetes_kind(resource: Mapping[str, Any]) -> str:
    props = resource.get("props") or {}
    return props.get("kind") or short_type(resource["type"])


def _props(resource: Mapping[str, Any]) -> Any:
    return mask_secret_pointers(resource.get("props") or {}, resource.get("secrets") or [])


def _pointer_path(pointer: str) -> Path:
    return tuple(int(p) if p.isdigit() else p for p in pointer.strip("/").split("/") if p)


def secret_value_changes(
    kind: str, before: Mapping[str, Any], after: Mapping[str, Any], seen: set[Path]
) -> tuple[FieldChange, ...]:
    """Secret inputs whose value changed (their fingerprints differ, see render.secret_fingerprints) at a path
    whose shape did not: shown as `[secret]` → `[secret] (changed)`, never as a value."""
    old = before.get("secret_fingerprints") or {}
    new = after.get("secret_fingerprints") or {}
    changes = []
    for pointer in sorted(set(old) & set(new)):
        path = _pointer_path(pointer)
        if old[pointer] != new[pointer] and path not in seen:
            changes.append(FieldChange(path, SECRET, f"{SECRET} (changed)", forces_replace(kind, path)))
    return tuple(changes)


def diff_graphs(
    before: Mapping[str, Any],
    after: Mapping[str, Any],
    *,
    base_label: str = "base",
    head_label: str = "working tree",
    notes: tuple[str, ...] = (),
) -> Plan:
    """Compare two rendered graphs resource by resource (matched by URN)."""
    old = {r["urn"]: r for r in before.get("resources", ())}
    new = {r["urn"]: r for r in after.get("resources", ())}
    changes: list[ResourceChange] = []
    unchanged = 0
    for urn in sorted(set(old) | set(new)):
        if urn not in new:
            changes.append(ResourceChange("delete", urn, old[urn]["type"], old[urn]["name"]))
            continue
        resource = new[urn]
        if urn not in old:
            changes.append(ResourceChange("create", urn, resource["type"], resource["name"]))
            continue
        kind = _kubernetes_kind(resource)
        fields = diff_resource(kind, _props(old[urn]), _props(resource))
        fields += secret_value_changes(kind, old[urn], resource, {f.path for f in fields})
        if not fields:
            unchanged += 1
            continue
        action: Action = "replace" if any(f.forces_replace for f in fields) else "update"
        changes.append(ResourceChange(action, urn, resource["type"], resource["name"], fields))
    changes.sort(key=lambda c: (ACTIONS.index(c.action), c.kind, c.name, c.urn))
    environment = after.get("environment") or before.get("environment") or ""
    return Plan(environment, tuple(changes), unchanged, base_label, head_label, notes)


# --- formatting helpers shared by the reports ------------------------------------------------------------------------


def format_path(path: Path) -> str:
    out = ""
    for segment in path:
        if isinstance(segment, tuple):
            out += f"[{segment[0]}={segment[1]}]"
        elif isinstance(segment, int):
            out += f"[{segment}]"
        else:
            out += f".{segment}" if out else segment
    return out or "(root)"


def format_value(value: Any) -> str:
    if value is ABSENT:
        return "(absent)"
    if is_pulumi_secret(value):
        return SECRET
    if isinstance(value, str):
        return json.dumps(value)
    if isinstance(value, float) and value.is_integer():
        return str(int(value))  # numbers arrive as floats under the Pulumi mocks
    return json.dumps(value, sort_keys=True, separators=(",", ":"), default=str)
