"""The CrossGuard pack (platform/policy/__main__.py) adapts every rule and reports exactly what `ops policy`
reports, when driven through pulumi_policy's own argument objects and unknown-value proxies (as under
`pulumi preview`)."""

from __future__ import annotations

import ast

import pytest
import yaml
from crossguard_driver import PACK_DIR, crossguard_findings, offline_findings, options
from policy_objects import compliant_stack, first_container, mutated
from pulumi_policy import (
    EnforcementLevel,
    ResourceValidationArgs,
    ResourceValidationPolicy,
    StackValidationPolicy,
)
from pulumi_policy.proxy import UNKNOWN_STRING_VALUE, UnknownValueError, unknown_checking_proxy
from rule_cases import VIOLATIONS, case_id

from commerce_platform.policy import RULES


def test_pack_builds_one_policy_per_rule_with_its_metadata(pack):
    policies = pack["policies"]()
    assert [p.name for p in policies] == [r.id for r in RULES]
    for policy, rule in zip(policies, RULES, strict=True):
        expected_type = ResourceValidationPolicy if rule.scope == "resource" else StackValidationPolicy
        assert isinstance(policy, expected_type)
        assert policy.description == rule.description
        assert policy.severity.value == rule.severity.value
        assert policy.enforcement_level is EnforcementLevel(rule.enforcement.value)


def test_pack_is_constructed_only_when_run_as_main():
    tree = ast.parse((PACK_DIR / "__main__.py").read_text())
    calls = [
        n for n in ast.walk(tree) if isinstance(n, ast.Call) and getattr(n.func, "id", None) == "PolicyPack"
    ]
    assert len(calls) == 1
    [guard] = [n for n in tree.body if isinstance(n, ast.If)]
    assert ast.unparse(guard.test) == "__name__ == '__main__'"
    assert calls[0] in list(ast.walk(guard))


def test_pack_project_file_runs_python_from_the_workspace_venv():
    project = yaml.safe_load((PACK_DIR / "PulumiPolicy.yaml").read_text())
    assert project["runtime"]["name"] == "python"
    assert (PACK_DIR / project["runtime"]["options"]["virtualenv"]).resolve() == PACK_DIR.parents[1] / ".venv"
    assert not (PACK_DIR / "__init__.py").exists() and not (PACK_DIR.parent / "__init__.py").exists()


def test_compliant_stack_passes_under_crossguard(pack):
    assert crossguard_findings(pack, compliant_stack("prod")) == set()


@pytest.mark.parametrize("rule_id, _what, edit, env", VIOLATIONS, ids=[case_id(c) for c in VIOLATIONS])
def test_crossguard_reports_what_ops_policy_reports(pack, rule_id, _what, edit, env):
    stack = mutated(compliant_stack(env), edit)
    findings = crossguard_findings(pack, stack)
    assert rule_id in {f[0] for f in findings}
    assert findings == offline_findings(stack, env)


def test_unknown_values_during_preview_only_defer_the_rules_that_read_them(pack):
    stack = mutated(
        compliant_stack("prod"), lambda s: first_container(s).__setitem__("image", UNKNOWN_STRING_VALUE)
    )
    deployment = next(e for e in stack if e["props"]["kind"] == "Deployment")
    by_name = {p.name: p for p in pack["policies"]()}

    def run(policy_name):
        reported = []
        args = ResourceValidationArgs(
            deployment["type"],
            unknown_checking_proxy(deployment["props"]),
            deployment["urn"],
            deployment["name"],
            options(),
            None,
        )
        by_name[policy_name].validate(args, lambda m, u=None: reported.append(m))
        return reported

    with pytest.raises(
        UnknownValueError
    ):  # pulumi_policy turns this into a "can't be known" note, not a failure
        run("image-digest-pinned")
    assert run("no-privileged") == []
