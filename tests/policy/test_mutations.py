"""Mutation suite: known-bad edits to a deep copy of the REAL rendered prod graph. Each one must be caught by
exactly the rule(s) meant for it (the unmutated graph has no violation at all, see test_real_graphs)."""

from __future__ import annotations

import pytest
from policy_objects import find, first_container, pod_template_of, remove

from commerce_platform.policy import evaluate_graph

SVC = "users"  # the service most edits hit; its Deployment, HPA, PDB and Service share the name


def container(resources, kind="Deployment", name=SVC):
    return first_container(resources, kind, name)


def pod(resources, kind="Deployment", name=SVC):
    return pod_template_of(find(resources, kind, name))["spec"]


def security(resources, key, value, kind="Deployment", name=SVC):
    container(resources, kind, name)["securityContext"][key] = value


def set_env(resources, env_name, **spec):
    env = container(resources)["env"]
    env[:] = [e for e in env if e["name"] != env_name] + [{"name": env_name, **spec}]


def drop_all(resources, kind):
    resources[:] = [r for r in resources if r["props"].get("kind") != kind]


# (mutation, edit of the graph's resource list, the rule ids that must catch it)
MUTATIONS = [
    ("drop the liveness probe", lambda r: container(r).pop("livenessProbe"), {"probes-present"}),
    ("drop the readiness probe", lambda r: container(r).pop("readinessProbe"), {"probes-present"}),
    (
        "readiness probe identical to liveness",
        lambda r: container(r).__setitem__("readinessProbe", container(r)["livenessProbe"]),
        {"probes-distinct"},
    ),
    ("privileged container", lambda r: security(r, "privileged", True), {"no-privileged"}),
    (
        "privileged migration Job",
        lambda r: security(r, "privileged", True, "Job", f"{SVC}-migrate"),
        {"no-privileged"},
    ),
    (
        "allowPrivilegeEscalation",
        lambda r: security(r, "allowPrivilegeEscalation", True),
        {"no-privilege-escalation"},
    ),
    ("runAsNonRoot false", lambda r: security(r, "runAsNonRoot", False), {"run-as-non-root"}),
    ("runAsUser 0", lambda r: security(r, "runAsUser", 0), {"no-root-uid"}),
    (
        "add SYS_ADMIN",
        lambda r: security(r, "capabilities", {"drop": ["ALL"], "add": ["SYS_ADMIN"]}),
        {"drop-all-capabilities"},
    ),
    (
        "seccomp Unconfined",
        lambda r: security(r, "seccompProfile", {"type": "Unconfined"}),
        {"seccomp-runtime-default"},
    ),
    ("hostNetwork", lambda r: pod(r).__setitem__("hostNetwork", True), {"no-host-namespaces"}),
    ("hostPort", lambda r: container(r)["ports"][0].__setitem__("hostPort", 80), {"no-host-ports"}),
    (
        "hostPath volume",
        lambda r: pod(r)["volumes"].append({"name": "host", "hostPath": {"path": "/"}}),
        {"no-host-path", "restricted-volume-types"},
    ),
    (
        "nfs volume",
        lambda r: pod(r)["volumes"].append({"name": "nfs", "nfs": {"server": "nas", "path": "/x"}}),
        {"restricted-volume-types"},
    ),
    (
        "writable root filesystem",
        lambda r: security(r, "readOnlyRootFilesystem", False),
        {"read-only-root-filesystem"},
    ),
    ("remove limits", lambda r: container(r)["resources"].pop("limits"), {"memory-limit"}),
    ("remove requests", lambda r: container(r)["resources"].pop("requests"), {"resource-requests"}),
    (
        "use :latest",
        lambda r: container(r).__setitem__("image", "ghcr.io/commerce-platform/users:latest"),
        {"image-tag-pinned", "image-digest-pinned"},
    ),
    (
        "tag instead of digest",
        lambda r: container(r).__setitem__("image", "ghcr.io/commerce-platform/users:1.4.2"),
        {"image-digest-pinned"},
    ),
    (
        "ConfigMap in the default namespace",
        lambda r: find(r, "ConfigMap", f"{SVC}-config")["metadata"].__setitem__("namespace", "default"),
        {"namespace-not-default"},
    ),
    (
        "Secret without a namespace",
        lambda r: find(r, "Secret", f"{SVC}-secrets")["metadata"].pop("namespace"),
        {"namespace-not-default"},
    ),
    (
        "default ServiceAccount",
        lambda r: pod(r).__setitem__("serviceAccountName", "default"),
        {"service-account-not-default"},
    ),
    (
        "delete the ServiceAccount",
        lambda r: remove(r, "ServiceAccount", SVC),
        {"service-account-exists"},
    ),
    (
        "automount the token",
        lambda r: pod(r).__setitem__("automountServiceAccountToken", True),
        {"service-account-token-not-automounted"},
    ),
    (
        "plaintext DATABASE_URL",
        lambda r: set_env(r, "DATABASE_URL", value="postgresql://users:hunter2@db:5432/users"),
        {"secrets-from-secret-refs"},
    ),
    (
        "JWT private key as a plain value",
        lambda r: set_env(r, "JWT_PRIVATE_KEY", value="-----BEGIN PRIVATE KEY-----"),
        {"secrets-from-secret-refs"},
    ),
    (
        "secret read from a ConfigMap",
        lambda r: set_env(
            r, "REDIS_URL", valueFrom={"configMapKeyRef": {"name": "users-config", "key": "REDIS_URL"}}
        ),
        {"secrets-from-secret-refs"},
    ),
    (
        "LoadBalancer Service",
        lambda r: find(r, "Service", SVC)["spec"].__setitem__("type", "LoadBalancer"),
        {"service-not-exposed"},
    ),
    ("delete the HPA", lambda r: remove(r, "HorizontalPodAutoscaler", SVC), {"hpa-for-service-deployment"}),
    (
        "retarget the HPA",
        lambda r: find(r, "HorizontalPodAutoscaler", SVC)["spec"]["scaleTargetRef"].__setitem__(
            "name", "userz"
        ),
        {"hpa-target-exists", "hpa-for-service-deployment"},
    ),
    (
        "add replicas",
        lambda r: find(r, "Deployment", SVC)["spec"].__setitem__("replicas", 3),
        {"no-replicas-with-hpa"},
    ),
    (
        "HPA min 1 in prod",
        lambda r: find(r, "HorizontalPodAutoscaler", SVC)["spec"].__setitem__("minReplicas", 1),
        {"hpa-min-replicas"},
    ),
    ("delete the PDB", lambda r: remove(r, "PodDisruptionBudget", SVC), {"pdb-present"}),
    (
        "zero-disruption PDB",
        lambda r: find(r, "PodDisruptionBudget", SVC)["spec"].__setitem__("maxUnavailable", 0),
        {"pdb-allows-disruption"},
    ),
    ("delete every NetworkPolicy", lambda r: drop_all(r, "NetworkPolicy"), {"networkpolicy-covers-pods"}),
    (
        "Service selector typo",
        lambda r: find(r, "Service", SVC)["spec"]["selector"].__setitem__("app.kubernetes.io/name", "user"),
        # ... and with no Service in front of them, prod's ServiceMonitor no longer reaches the pods
        {"service-selects-pods", "deployment-scraped"},
    ),
    ("drop the users ServiceMonitor", lambda r: remove(r, "ServiceMonitor", SVC), {"deployment-scraped"}),
    (
        "drop the part-of label",
        lambda r: find(r, "Deployment", SVC)["metadata"]["labels"].pop("app.kubernetes.io/part-of"),
        {"recommended-labels"},
    ),
]


def test_mutation_suite_is_large_and_distinct():
    assert len(MUTATIONS) >= 20
    assert len({m[0] for m in MUTATIONS}) == len(MUTATIONS)
    assert len(set().union(*(m[2] for m in MUTATIONS))) >= 20  # distinct rules exercised


@pytest.mark.parametrize("what, edit, expected", MUTATIONS, ids=[m[0] for m in MUTATIONS])
def test_mutation_is_caught_by_the_rule_meant_for_it(prod_graph, what, edit, expected):
    edit(prod_graph["resources"])
    caught = {v.rule.id for v in evaluate_graph(prod_graph)}
    assert caught == expected, what
