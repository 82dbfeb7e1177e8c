"""Every rule, one violating and at least one passing fixture (hand-written objects, no rendering)."""

from __future__ import annotations

import pytest
from policy_objects import NAMESPACE, as_resources, compliant_stack, first_container, mutated
from rule_cases import PASSES, VIOLATIONS, case_id, set_security, set_spec

from commerce_platform.policy import RULES, Enforcement, evaluate


def rule_ids(stack: list[dict], env: str = "prod") -> set[str]:
    return {v.rule.id for v in evaluate(as_resources(stack), env)}


def test_compliant_stack_has_no_violation_in_any_environment():
    for env in ("dev", "prod", "pr-42"):
        violations = evaluate(as_resources(compliant_stack(env)), env)
        assert [(v.rule.id, v.resource.display, v.message) for v in violations] == []


@pytest.mark.parametrize("rule_id, _what, edit, env", VIOLATIONS, ids=[case_id(c) for c in VIOLATIONS])
def test_violating_fixture_is_caught(rule_id, _what, edit, env):
    assert rule_id in rule_ids(mutated(compliant_stack(env), edit), env)


@pytest.mark.parametrize("rule_id, _what, edit, env", PASSES, ids=[case_id(c) for c in PASSES])
def test_passing_fixture_is_not_reported(rule_id, _what, edit, env):
    stack = mutated(compliant_stack(env), edit)
    assert rule_id not in rule_ids(stack, env)


def test_every_rule_has_a_violating_and_a_passing_fixture():
    ids = {r.id for r in RULES}
    assert len(ids) == len(RULES) >= 20
    assert {c[0] for c in VIOLATIONS} == ids
    assert {c[0] for c in PASSES} == ids


def test_prod_only_rules_are_skipped_elsewhere():
    stack = mutated(
        compliant_stack("dev"),
        lambda s: (
            first_container(s).__setitem__("image", "ghcr.io/x/users:1.0"),
            set_spec("HorizontalPodAutoscaler", "minReplicas", 1.0)(s),
        ),
    )
    assert {"image-digest-pinned", "hpa-min-replicas"} <= rule_ids(stack, "prod")
    assert not {"image-digest-pinned", "hpa-min-replicas"} & rule_ids(stack, "pr-42")


def test_violation_names_resource_and_enforcement():
    stack = mutated(compliant_stack("dev"), set_security("privileged", True))
    [violation] = [v for v in evaluate(as_resources(stack), "dev") if v.rule.id == "no-privileged"]
    assert violation.resource.display == f"Deployment/{NAMESPACE}/users"
    assert violation.message == "container 'users' is privileged"
    assert violation.rule.enforcement is Enforcement.MANDATORY and violation.mandatory
