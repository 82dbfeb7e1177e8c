"""Policy as code: rule functions shared by the CrossGuard pack (platform/policy) and `ops policy`.

Importing this package registers every rule in `RULES`.
"""

from commerce_platform.policy import addons, pod_security, stack, workloads  # noqa: F401  (registers the rules)
from commerce_platform.policy.model import (
    PRODUCTION,
    RULES,
    Enforcement,
    Resource,
    Rule,
    Severity,
    Violation,
)
from commerce_platform.policy.runner import (
    environment_from_urn,
    evaluate,
    evaluate_graph,
    load_graph,
    resources_of,
)

__all__ = [
    "PRODUCTION",
    "RULES",
    "Enforcement",
    "Resource",
    "Rule",
    "Severity",
    "Violation",
    "environment_from_urn",
    "evaluate",
    "evaluate_graph",
    "load_graph",
    "resources_of",
]
