"""Rules that need the whole stack: autoscaling, disruption budgets, network isolation, service accounts,
Service selectors."""

from __future__ import annotations

from collections.abc import Iterator, Sequence

from commerce_platform import catalogue
from commerce_platform.policy.k8s import (
    WORKLOAD_KINDS,
    as_number,
    dig,
    object_name,
    pod_labels,
    pod_spec,
    same_namespace,
    selector_matches,
)
from commerce_platform.policy.model import PRODUCTION, Resource, Severity, stack_rule
from commerce_platform.policy.workloads import NAME_LABEL

Findings = Iterator[tuple[Resource, str]]
SCALABLE_KINDS = frozenset({"Deployment", "StatefulSet", "ReplicaSet"})
PROD_MIN_REPLICAS = 2


def of_kind(resources: Sequence[Resource], *kinds: str) -> list[Resource]:
    return [r for r in resources if r.kind in kinds]


def workloads(resources: Sequence[Resource]) -> list[Resource]:
    return [r for r in resources if r.kind in WORKLOAD_KINDS and pod_spec(r) is not None]


def service_deployments(resources: Sequence[Resource]) -> list[Resource]:
    """Deployments that run a catalogue service (found by the app.kubernetes.io/name label)."""
    return [
        r
        for r in of_kind(resources, "Deployment")
        if (r.labels.get(NAME_LABEL) or pod_labels(r).get(NAME_LABEL)) in catalogue.BY_NAME
    ]


def hpa_targets(hpa: Resource, workload: Resource) -> bool:
    ref = dig(hpa.props, "spec", "scaleTargetRef") or {}
    return (
        same_namespace(hpa, workload)
        and ref.get("kind") == workload.kind
        and ref.get("name") == object_name(workload)
    )


def hpas_for(workload: Resource, resources: Sequence[Resource]) -> list[Resource]:
    return [h for h in of_kind(resources, "HorizontalPodAutoscaler") if hpa_targets(h, workload)]


def selects(selector_owner: Resource, selector: object, workload: Resource) -> bool:
    return same_namespace(selector_owner, workload) and selector_matches(selector, pod_labels(workload))


@stack_rule(
    id="service-account-token-not-automounted",
    severity=Severity.MEDIUM,
    description="Pods must not automount a ServiceAccount token (pod sets false, or leaves it unset and its "
    "ServiceAccount sets false).",
)
def service_account_token_not_automounted(resources: Sequence[Resource]) -> Findings:
    accounts = of_kind(resources, "ServiceAccount")
    for workload in workloads(resources):
        spec = pod_spec(workload)
        automount = spec.get("automountServiceAccountToken")
        if automount is False:
            continue
        if automount is None:
            name = service_account_name(spec)
            account = next(
                (a for a in accounts if object_name(a) == name and same_namespace(a, workload)), None
            )
            if account is not None and account.props.get("automountServiceAccountToken") is False:
                continue
        yield workload, "pod automounts its ServiceAccount token"


def service_account_name(spec) -> str:
    return spec.get("serviceAccountName") or spec.get("serviceAccount") or "default"


@stack_rule(
    id="service-account-exists",
    severity=Severity.HIGH,
    description="A pod's own ServiceAccount is declared in the stack (else the API server refuses the pods).",
)
def service_account_exists(resources: Sequence[Resource]) -> Findings:
    accounts = of_kind(resources, "ServiceAccount")
    for workload in workloads(resources):
        name = service_account_name(pod_spec(workload))
        if name == "default":  # exists in every namespace; service-account-not-default reports it
            continue
        if not any(object_name(a) == name and same_namespace(a, workload) for a in accounts):
            yield workload, f"ServiceAccount {name!r} is not declared in its namespace"


@stack_rule(
    id="hpa-for-service-deployment",
    severity=Severity.HIGH,
    description="Every service Deployment has a HorizontalPodAutoscaler targeting it.",
)
def hpa_for_service_deployment(resources: Sequence[Resource]) -> Findings:
    for deployment in service_deployments(resources):
        if not hpas_for(deployment, resources):
            yield deployment, "no HorizontalPodAutoscaler targets this service Deployment"


@stack_rule(
    id="hpa-target-exists",
    severity=Severity.HIGH,
    description="Every HorizontalPodAutoscaler targets a workload that exists in its namespace.",
)
def hpa_target_exists(resources: Sequence[Resource]) -> Findings:
    scalable = of_kind(resources, *SCALABLE_KINDS)
    for hpa in of_kind(resources, "HorizontalPodAutoscaler"):
        if not any(hpa_targets(hpa, w) for w in scalable):
            ref = dig(hpa.props, "spec", "scaleTargetRef") or {}
            yield hpa, f"scaleTargetRef {ref.get('kind')}/{ref.get('name')} does not exist in the stack"


@stack_rule(
    id="no-replicas-with-hpa",
    severity=Severity.MEDIUM,
    description="A workload scaled by an HPA must not set spec.replicas (each apply would fight the HPA).",
)
def no_replicas_with_hpa(resources: Sequence[Resource]) -> Findings:
    for workload in of_kind(resources, *SCALABLE_KINDS):
        # CrossGuard hands stack rules the *outputs*: a live object (it has a status) carries the replicas the
        # API server defaulted or the HPA set, so only declared objects (inputs, the rendered graph) are judged.
        if "status" in workload.props:
            continue
        if dig(workload.props, "spec", "replicas") is not None and hpas_for(workload, resources):
            yield workload, "sets spec.replicas although an HPA scales it"


@stack_rule(
    id="hpa-min-replicas",
    severity=Severity.HIGH,
    environments=PRODUCTION,
    description=f"In production every HPA keeps at least {PROD_MIN_REPLICAS} replicas "
    "and maxReplicas >= minReplicas.",
)
def hpa_min_replicas(resources: Sequence[Resource]) -> Findings:
    for hpa in of_kind(resources, "HorizontalPodAutoscaler"):
        minimum = as_number(dig(hpa.props, "spec", "minReplicas"))
        minimum = 1.0 if minimum is None else minimum
        maximum = as_number(dig(hpa.props, "spec", "maxReplicas"))
        if minimum < PROD_MIN_REPLICAS:
            yield hpa, f"minReplicas {minimum:g} < {PROD_MIN_REPLICAS}: one pod is a single point of failure"
        if maximum is None or maximum < minimum:
            yield hpa, f"maxReplicas {maximum} is below minReplicas {minimum:g}"


@stack_rule(
    id="pdb-present",
    severity=Severity.HIGH,
    description="Every service Deployment is covered by a PodDisruptionBudget.",
)
def pdb_present(resources: Sequence[Resource]) -> Findings:
    budgets = of_kind(resources, "PodDisruptionBudget")
    for deployment in service_deployments(resources):
        if not any(selects(b, dig(b.props, "spec", "selector"), deployment) for b in budgets):
            yield deployment, "no PodDisruptionBudget selects this Deployment's pods"


def expected_replicas(workload: Resource, resources: Sequence[Resource]) -> float:
    """The floor of running replicas: the HPA's minReplicas when scaled, else spec.replicas (default 1)."""
    hpas = hpas_for(workload, resources)
    if hpas:
        return min(as_number(dig(h.props, "spec", "minReplicas")) or 1.0 for h in hpas)
    replicas = as_number(dig(workload.props, "spec", "replicas"))
    return 1.0 if replicas is None else replicas


def blocks_all_disruption(spec: object, replicas: float) -> bool:
    max_unavailable, min_available = dig(spec, "maxUnavailable"), dig(spec, "minAvailable")
    if max_unavailable is not None:
        return max_unavailable in ("0%",) or as_number(max_unavailable) == 0
    if min_available is None:
        return False
    if isinstance(min_available, str):
        return min_available == "100%"
    return as_number(min_available) is not None and as_number(min_available) >= replicas


@stack_rule(
    id="pdb-allows-disruption",
    severity=Severity.HIGH,
    environments=PRODUCTION,
    description="In production no PodDisruptionBudget may forbid every voluntary disruption "
    "(maxUnavailable 0, or minAvailable >= the replicas it covers): nodes could never drain.",
)
def pdb_allows_disruption(resources: Sequence[Resource]) -> Findings:
    for budget in of_kind(resources, "PodDisruptionBudget"):
        spec = dig(budget.props, "spec") or {}
        for workload in of_kind(resources, *SCALABLE_KINDS):
            if not selects(budget, spec.get("selector"), workload):
                continue
            replicas = expected_replicas(workload, resources)
            if blocks_all_disruption(spec, replicas):
                yield budget, f"allows no voluntary disruption of {workload.display} ({replicas:g} replicas)"


@stack_rule(
    id="networkpolicy-covers-pods",
    severity=Severity.HIGH,
    description="Every pod is selected by at least one NetworkPolicy in its namespace.",
)
def networkpolicy_covers_pods(resources: Sequence[Resource]) -> Findings:
    policies = of_kind(resources, "NetworkPolicy")
    for workload in workloads(resources):
        if not any(selects(p, dig(p.props, "spec", "podSelector"), workload) for p in policies):
            yield workload, "no NetworkPolicy selects these pods"


@stack_rule(
    id="service-selects-pods",
    severity=Severity.MEDIUM,
    description="Every Service with a selector selects the pods of some workload in its namespace.",
)
def service_selects_pods(resources: Sequence[Resource]) -> Findings:
    pods = workloads(resources)
    for service in of_kind(resources, "Service"):
        selector = dig(service.props, "spec", "selector")
        if not selector:
            continue
        if not any(selects(service, {"matchLabels": selector}, w) for w in pods):
            yield service, f"selector {dict(selector)} matches no pods"


def monitoring_on(resources: Sequence[Resource], namespace: str | None) -> bool:
    """The environment's monitoring is on: its Namespace says so, or it declares ServiceMonitors."""
    for ns in of_kind(resources, "Namespace"):
        if object_name(ns) == namespace and ns.labels.get(catalogue.MONITORING_LABEL) == "enabled":
            return True
    return any(m.namespace == namespace for m in of_kind(resources, "ServiceMonitor"))


def _scrapes(monitor: Resource, service: Resource) -> bool:
    """The ServiceMonitor selects this Service and scrapes one of its named ports."""
    if not (
        same_namespace(monitor, service)
        and selector_matches(dig(monitor.props, "spec", "selector"), service.labels)
    ):
        return False
    ports = {p.get("name") for p in dig(service.props, "spec", "ports") or []}
    return any(e.get("port") in ports for e in dig(monitor.props, "spec", "endpoints") or [])


@stack_rule(
    id="deployment-scraped",
    severity=Severity.MEDIUM,
    description="Where monitoring is on, every service Deployment is scraped: a ServiceMonitor selects a Service "
    "that selects its pods, on a port that Service names.",
)
def deployment_scraped(resources: Sequence[Resource]) -> Findings:
    monitors = of_kind(resources, "ServiceMonitor")
    services = of_kind(resources, "Service")
    for deployment in service_deployments(resources):
        if not monitoring_on(resources, deployment.namespace):
            continue
        fronts = [
            s
            for s in services
            if dig(s.props, "spec", "selector")
            and selects(s, {"matchLabels": dig(s.props, "spec", "selector")}, deployment)
        ]
        if not any(_scrapes(m, s) for m in monitors for s in fronts):
            yield deployment, "monitoring is on, but no ServiceMonitor scrapes a Service of these pods"


def retains_data(statefulset: Resource) -> bool:
    policy = dig(statefulset.props, "spec", "persistentVolumeClaimRetentionPolicy") or {}
    return policy.get("whenDeleted") == "Retain"


@stack_rule(
    id="retained-data-protected",
    severity=Severity.HIGH,
    description="Data an environment retains (a StatefulSet whose volume claims are retained) survives "
    "`pulumi destroy`: the StatefulSet and its Namespace, when the stack owns it, are protected (deleting the "
    "Namespace would delete the claims whatever their retention policy says).",
)
def retained_data_protected(resources: Sequence[Resource]) -> Findings:
    namespaces = {object_name(ns): ns for ns in of_kind(resources, "Namespace")}
    for statefulset in of_kind(resources, "StatefulSet"):
        if not retains_data(statefulset):
            continue
        if not statefulset.protected:
            yield (
                statefulset,
                "retains its volume claims but is not protected (ResourceOptions(protect=True))",
            )
        namespace = namespaces.get(statefulset.namespace)
        if namespace is not None and not namespace.protected:
            yield namespace, f"holds retained data ({statefulset.display}) but is not protected"


EVERYWHERE = frozenset({"0.0.0.0/0", "::/0"})


@stack_rule(
    id="egress-not-everywhere",
    severity=Severity.HIGH,
    environments=PRODUCTION,
    description="In production no NetworkPolicy allows egress to every address (0.0.0.0/0, ::/0): clients reach a "
    "managed data store at its own networks (environments/<env>.yaml postgres/redis cidrs).",
)
def egress_not_everywhere(resources: Sequence[Resource]) -> Findings:
    for policy in of_kind(resources, "NetworkPolicy"):
        for rule in dig(policy.props, "spec", "egress") or []:
            for peer in rule.get("to") or []:
                cidr = (peer.get("ipBlock") or {}).get("cidr")
                if cidr in EVERYWHERE:
                    yield policy, f"allows egress to {cidr}"
