"""Drive the CrossGuard pack's policies the way the Pulumi engine does: pulumi_policy's own argument objects,
props wrapped in its unknown-value proxy. The pack file is loaded under another name, so `PolicyPack` (a blocking
gRPC server) is never constructed."""

from __future__ import annotations

import runpy
from pathlib import Path

from policy_objects import as_resources
from pulumi_policy import (
    PolicyResource,
    PolicyResourceOptions,
    ResourceValidationArgs,
    ResourceValidationPolicy,
    StackValidationArgs,
)
from pulumi_policy.policy import PolicyCustomTimeouts, _NotApplicableError
from pulumi_policy.proxy import unknown_checking_proxy
from render_support import fresh  # tests/platform, on sys.path from tests/policy/conftest.py

from commerce_platform.policy import evaluate

PACK_DIR = Path(__file__).resolve().parents[2] / "platform" / "policy"


def load_pack() -> dict:
    """The pack module's namespace (its `policies()` builder), without running it as __main__."""
    return runpy.run_path(str(PACK_DIR / "__main__.py"), run_name="commerce_policy_pack")


def options(entry: dict | None = None) -> PolicyResourceOptions:
    """The options CrossGuard hands a policy, from a graph entry's recorded `options`."""
    recorded = (entry or {}).get("options") or {}
    return PolicyResourceOptions(
        bool(recorded.get("protect")),
        list(recorded.get("ignoreChanges") or []),
        recorded.get("deleteBeforeReplace"),
        [],
        PolicyCustomTimeouts(0, 0, 0),
        [],
    )


def crossguard_findings(pack: dict, stack: list[dict]) -> set[tuple[str, str, str]]:
    """(rule id, urn, message) for every violation the pack's policies report on `stack`."""
    findings: set[tuple[str, str, str]] = set()
    for policy in pack["policies"]():
        reported: list[tuple[str, str | None]] = []

        def report(message, urn=None, reported=reported):
            reported.append((message, urn))

        try:
            if isinstance(policy, ResourceValidationPolicy):
                for e in stack:
                    args = ResourceValidationArgs(
                        e["type"],
                        unknown_checking_proxy(fresh(e["props"])),
                        e["urn"],
                        e["name"],
                        options(e),
                        None,
                    )
                    before = len(reported)
                    policy.validate(args, report)
                    reported[before:] = [(m, e["urn"]) for m, _ in reported[before:]]
            else:
                resources = [
                    PolicyResource(
                        e["type"],
                        unknown_checking_proxy(fresh(e["props"])),
                        e["urn"],
                        e["name"],
                        options(e),
                        None,
                        None,
                        [],
                        {},
                    )
                    for e in stack
                ]
                policy.validate(StackValidationArgs(resources), report)
        except _NotApplicableError:
            continue
        findings |= {(policy.name, urn, message) for message, urn in reported}
    return findings


def offline_findings(stack: list[dict], env: str) -> set[tuple[str, str, str]]:
    findings = set()
    for v in evaluate(as_resources(stack), env):
        message = v.message if v.rule.scope == "resource" else f"{v.resource.display}: {v.message}"
        findings.add((v.rule.id, v.resource.urn, message))
    return findings
