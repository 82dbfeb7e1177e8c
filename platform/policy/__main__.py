"""The CrossGuard pack: `pulumi preview --policy-pack platform/policy`.

Adapts the rule functions of `commerce_platform.policy` (the same ones `ops policy` runs offline on the rendered
graph) to pulumi_policy. The pack itself is only built when this file runs as `__main__` (as the Pulumi CLI runs
it): constructing `PolicyPack` starts the Analyzer gRPC server and blocks, so importers call `policies()` instead.
"""

from __future__ import annotations

from pulumi_policy import (
    EnforcementLevel,
    Policy,
    PolicyPack,
    ReportViolation,
    ResourceValidationArgs,
    ResourceValidationPolicy,
    Severity,
    StackValidationArgs,
    StackValidationPolicy,
)

from commerce_platform.policy import RULES, Enforcement, Resource, Rule, environment_from_urn

PACK_NAME = "commerce-platform"


def _options(opts) -> dict:
    """The resource options CrossGuard shows, in graph.json's `options` shape."""
    if opts is None:
        return {}
    options = {"protect": True} if opts.protect else {}
    if opts.delete_before_replace:
        options["deleteBeforeReplace"] = True
    if opts.ignore_changes:
        options["ignoreChanges"] = sorted(opts.ignore_changes)
    return options


ENFORCEMENT_LEVELS = {
    Enforcement.MANDATORY: EnforcementLevel.MANDATORY,
    Enforcement.ADVISORY: EnforcementLevel.ADVISORY,
}


def _metadata(rule: Rule) -> dict:
    return {
        "name": rule.id,
        "description": rule.description,
        "enforcement_level": ENFORCEMENT_LEVELS[rule.enforcement],
        "severity": Severity(rule.severity.value),
        "tags": ["kubernetes", *(f"env:{e}" for e in sorted(rule.environments or ()))],
    }


def resource_policy(rule: Rule) -> ResourceValidationPolicy:
    def validate(args: ResourceValidationArgs, report_violation: ReportViolation) -> None:
        environment = environment_from_urn(args.urn)
        if not rule.applies_to(environment):
            args.not_applicable(f"applies to {', '.join(sorted(rule.environments))} only, not {environment}")
        resource = Resource(
            type=args.resource_type,
            name=args.name,
            props=args.props,
            urn=args.urn,
            options=_options(args.opts),
        )
        for message in rule.check(resource):
            report_violation(message, None)

    return ResourceValidationPolicy(validate=validate, **_metadata(rule))


def stack_policy(rule: Rule) -> StackValidationPolicy:
    def validate(args: StackValidationArgs, report_violation: ReportViolation) -> None:
        if not args.resources:
            return
        environment = environment_from_urn(args.resources[0].urn)
        if not rule.applies_to(environment):
            args.not_applicable(f"applies to {', '.join(sorted(rule.environments))} only, not {environment}")
        resources = [
            Resource(type=r.resource_type, name=r.name, props=r.props, urn=r.urn, options=_options(r.opts))
            for r in args.resources
        ]
        for resource, message in rule.check(resources):
            report_violation(f"{resource.display}: {message}", resource.urn)

    return StackValidationPolicy(validate=validate, **_metadata(rule))


def policies() -> list[Policy]:
    """One pulumi_policy Policy per rule, in rule order."""
    builders = {"resource": resource_policy, "stack": stack_policy}
    return [builders[rule.scope](rule) for rule in RULES]


if __name__ == "__main__":
    PolicyPack(name=PACK_NAME, policies=policies(), enforcement_level=EnforcementLevel.MANDATORY)
