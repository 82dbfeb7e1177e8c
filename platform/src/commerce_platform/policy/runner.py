"""Run the rules over a whole stack (offline graph or any list of resources)."""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

from commerce_platform.policy.model import RULES, Resource, Rule, Violation


def environment_from_urn(urn: str) -> str:
    """`urn:pulumi:<stack>::<project>::<type>::<name>` -> `<stack>` (stacks are named after environments)."""
    prefix = "urn:pulumi:"
    if not urn.startswith(prefix) or "::" not in urn:
        raise ValueError(f"not a Pulumi URN: {urn!r}")
    return urn[len(prefix) :].split("::", 1)[0]


def check_resource(rule: Rule, resource: Resource) -> list[Violation]:
    return [Violation(rule, resource, message) for message in rule.check(resource)]


def check_stack(rule: Rule, resources: Sequence[Resource]) -> list[Violation]:
    return [Violation(rule, resource, message) for resource, message in rule.check(resources)]


def evaluate(
    resources: Sequence[Resource], environment: str, rules: Iterable[Rule] = RULES
) -> list[Violation]:
    """Every violation of every rule that applies to `environment`: mandatory first, then by rule and resource."""
    violations: list[Violation] = []
    for rule in rules:
        if not rule.applies_to(environment):
            continue
        if rule.scope == "resource":
            for resource in resources:
                violations.extend(check_resource(rule, resource))
        else:
            violations.extend(check_stack(rule, resources))
    return sorted(
        violations, key=lambda v: (not v.mandatory, v.rule.id, v.resource.display if v.resource else "")
    )


def resources_of(graph: Mapping[str, Any]) -> list[Resource]:
    return [Resource.from_graph_entry(entry) for entry in graph["resources"]]


def evaluate_graph(graph: Mapping[str, Any]) -> list[Violation]:
    """Check a rendered graph (`render_environment()` / graph.json) against the rules for its environment."""
    return evaluate(resources_of(graph), graph["environment"])


def load_graph(path: Path) -> dict[str, Any]:
    """Read a graph.json; raises ValueError with a one-line reason when it is not one."""
    try:
        graph = json.loads(path.read_text())
    except OSError as exc:
        raise ValueError(f"cannot read {path}: {exc.strerror}") from None
    except json.JSONDecodeError as exc:
        raise ValueError(f"{path} is not JSON: {exc.msg} at line {exc.lineno}") from None
    if (
        not isinstance(graph, dict)
        or not isinstance(graph.get("environment"), str)
        or not isinstance(graph.get("resources"), list)
    ):
        raise ValueError(f"{path} is not a rendered graph (needs 'environment' and 'resources')")
    for entry in graph["resources"]:
        if not isinstance(entry, dict) or not all(
            isinstance(entry.get(k), str) for k in ("urn", "type", "name")
        ):
            raise ValueError(f"{path}: every resource needs string 'urn', 'type' and 'name'")
        if not isinstance(entry.get("props", {}), dict):
            raise ValueError(f"{path}: resource {entry['urn']} has props that are not an object")
    return graph
