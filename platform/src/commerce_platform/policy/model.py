"""What a rule, a resource and a violation are.

Rules are plain functions over plain data so the very same code runs under the Pulumi engine (CrossGuard hands
us `resource_type` + `props`) and offline on a rendered graph (`ops policy`).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any


class Severity(StrEnum):
    LOW = "low"
    MEDIUM = "medium"
    HIGH = "high"
    CRITICAL = "critical"


class Enforcement(StrEnum):
    MANDATORY = "mandatory"  # blocks `pulumi up` / fails `ops policy`
    ADVISORY = "advisory"  # reported, never blocks


PRODUCTION = frozenset({"prod"})
# pulumi-kubernetes modules whose types are component resources (no Kubernetes object of their own).
COMPONENT_MODULES = frozenset({"yaml", "helm.sh", "kustomize"})


@dataclass(frozen=True)
class Resource:
    """One resource of a stack: its Pulumi type token, logical name, URN and (input) properties."""

    type: str
    name: str
    props: Mapping[str, Any]
    urn: str = ""
    # Lifecycle options (graph.json `options`; under CrossGuard from the resource's options): protect,
    # deleteBeforeReplace, ignoreChanges, ...
    options: Mapping[str, Any] = field(default_factory=dict)

    @classmethod
    def from_graph_entry(cls, entry: Mapping[str, Any]) -> Resource:
        return cls(
            type=entry["type"],
            name=entry["name"],
            props=entry.get("props") or {},
            urn=entry["urn"],
            options=entry.get("options") or {},
        )

    @property
    def protected(self) -> bool:
        return bool(self.options.get("protect"))

    @property
    def kind(self) -> str | None:
        """The Kubernetes kind for `kubernetes:<group>/<version>:<Kind>` tokens, else None."""
        package, _, rest = self.type.partition(":")
        module, _, kind = rest.partition(":")
        if package != "kubernetes" or "/" not in module or not kind:
            return None
        if module.split("/", 1)[0] in COMPONENT_MODULES:  # ConfigGroup, Chart, ...: components, not objects
            return None
        return kind

    @property
    def metadata(self) -> Mapping[str, Any]:
        return self.props.get("metadata") or {}

    @property
    def namespace(self) -> str | None:
        return self.metadata.get("namespace")

    @property
    def labels(self) -> Mapping[str, Any]:
        return self.metadata.get("labels") or {}

    @property
    def display(self) -> str:
        """`Kind/namespace/name` for humans; falls back to the Pulumi name."""
        if self.kind is None:
            return self.name
        name = self.metadata.get("name") or self.name
        return "/".join(p for p in (self.kind, self.namespace, name) if p)


ResourceCheck = Callable[[Resource], Iterable[str]]
StackCheck = Callable[[Sequence[Resource]], Iterable[tuple[Resource, str]]]


@dataclass(frozen=True)
class Rule:
    id: str
    description: str
    severity: Severity
    enforcement: Enforcement
    scope: str  # "resource" (check: ResourceCheck) or "stack" (check: StackCheck)
    check: Callable[..., Iterable[Any]] = field(repr=False)
    environments: frozenset[str] | None = None  # None: every environment

    def applies_to(self, environment: str) -> bool:
        return self.environments is None or environment in self.environments


@dataclass(frozen=True)
class Violation:
    rule: Rule
    resource: Resource | None
    message: str

    @property
    def mandatory(self) -> bool:
        return self.rule.enforcement is Enforcement.MANDATORY


RULES: list[Rule] = []


def _register(scope: str, **meta: Any) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    def decorate(check: Callable[..., Any]) -> Callable[..., Any]:
        if any(r.id == meta["id"] for r in RULES):
            raise ValueError(f"duplicate policy rule id {meta['id']!r}")
        envs = meta.pop("environments", None)
        RULES.append(Rule(scope=scope, check=check, environments=frozenset(envs) if envs else None, **meta))
        return check

    return decorate


def resource_rule(
    *,
    id: str,
    description: str,
    severity: Severity,
    enforcement: Enforcement = Enforcement.MANDATORY,
    environments: Iterable[str] | None = None,
):
    """Register a check over one resource; it yields violation messages."""
    return _register(
        "resource",
        id=id,
        description=description,
        severity=severity,
        enforcement=enforcement,
        environments=environments,
    )


def stack_rule(
    *,
    id: str,
    description: str,
    severity: Severity,
    enforcement: Enforcement = Enforcement.MANDATORY,
    environments: Iterable[str] | None = None,
):
    """Register a check over all resources of a stack; it yields (resource, message) pairs."""
    return _register(
        "stack",
        id=id,
        description=description,
        severity=severity,
        enforcement=enforcement,
        environments=environments,
    )
