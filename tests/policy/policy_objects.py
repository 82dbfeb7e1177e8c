"""Hand-written Kubernetes objects for the per-rule fixtures: a small stack that satisfies every rule, plus
helpers to find and edit objects in a graph (shared with the mutation suite on the real rendered graph)."""

from __future__ import annotations

from typing import Any

from render_support import fresh  # tests/platform, on sys.path from tests/policy/conftest.py

from commerce_platform.catalogue import METRICS_API_LABEL
from commerce_platform.policy import Resource
from commerce_platform.policy.workloads import environment_registry

ENVIRONMENTS = ("dev", "prod", "pr-42")  # the real environments every test renders
NAMESPACE = "commerce"
DIGEST = "sha256:" + "ab" * 32
TYPES = {
    "Namespace": "kubernetes:core/v1:Namespace",
    "ServiceAccount": "kubernetes:core/v1:ServiceAccount",
    "Service": "kubernetes:core/v1:Service",
    "Pod": "kubernetes:core/v1:Pod",
    "Deployment": "kubernetes:apps/v1:Deployment",
    "StatefulSet": "kubernetes:apps/v1:StatefulSet",
    "Job": "kubernetes:batch/v1:Job",
    "CronJob": "kubernetes:batch/v1:CronJob",
    "HorizontalPodAutoscaler": "kubernetes:autoscaling/v2:HorizontalPodAutoscaler",
    "PodDisruptionBudget": "kubernetes:policy/v1:PodDisruptionBudget",
    "NetworkPolicy": "kubernetes:networking.k8s.io/v1:NetworkPolicy",
    "ServiceMonitor": "kubernetes:monitoring.coreos.com/v1:ServiceMonitor",
}


def labels(name: str, component: str = "service") -> dict[str, str]:
    return {
        "app.kubernetes.io/name": name,
        "app.kubernetes.io/instance": f"{name}-test",
        "app.kubernetes.io/component": component,
        "app.kubernetes.io/part-of": "commerce-platform",
        "app.kubernetes.io/managed-by": "pulumi",
    }


def entry(kind: str, name: str, body: dict[str, Any], env: str = "prod", namespaced: bool = True) -> dict:
    metadata = {"name": name, "labels": labels(name)} | body.pop("metadata", {})
    if namespaced:
        metadata.setdefault("namespace", NAMESPACE)
    return {
        "urn": f"urn:pulumi:{env}::commerce-platform::{TYPES[kind]}::{name}",
        "type": TYPES[kind],
        "name": name,
        "parent": None,
        "dependencies": [],
        "props": {
            "apiVersion": TYPES[kind].split(":")[1].replace("core/", ""),
            "kind": kind,
            "metadata": metadata,
            **body,
        },
    }


def container(name: str, probes: bool = True) -> dict[str, Any]:
    c = {
        "name": name,
        "image": f"ghcr.io/commerce-platform/{name}@{DIGEST}",
        "ports": [{"name": "http", "containerPort": 8001}],
        "env": [
            {"name": "SERVICE_NAME", "value": name},
            {"name": "JWT_PUBLIC_KEY", "value": "-----BEGIN PUBLIC KEY-----"},
            {"name": "JWT_KEY_ID", "value": "users-1"},
            {"name": "ACCESS_TOKEN_TTL_SECONDS", "value": "900"},
            {
                "name": "DATABASE_URL",
                "valueFrom": {"secretKeyRef": {"name": f"{name}-env", "key": "DATABASE_URL"}},
            },
        ],
        "resources": {"requests": {"cpu": "100m", "memory": "128Mi"}, "limits": {"memory": "256Mi"}},
        "securityContext": {
            "allowPrivilegeEscalation": False,
            "readOnlyRootFilesystem": True,
            "runAsNonRoot": True,
            "runAsUser": 10001.0,  # numbers arrive as floats under Pulumi mocks
            "capabilities": {"drop": ["ALL"]},
            "seccompProfile": {"type": "RuntimeDefault"},
        },
        "volumeMounts": [{"name": "tmp", "mountPath": "/tmp"}],
    }
    if probes:
        c["livenessProbe"] = {"httpGet": {"path": "/health", "port": "http"}, "periodSeconds": 10.0}
        c["readinessProbe"] = {"httpGet": {"path": "/ready", "port": "http"}, "periodSeconds": 5.0}
    return c


def pod_spec(name: str, probes: bool = True) -> dict[str, Any]:
    return {
        "serviceAccountName": name,
        "automountServiceAccountToken": False,
        "securityContext": {"runAsNonRoot": True, "seccompProfile": {"type": "RuntimeDefault"}},
        "containers": [container(name, probes)],
        "volumes": [{"name": "tmp", "emptyDir": {"sizeLimit": "64Mi"}}],
    }


def template(name: str, probes: bool = True) -> dict[str, Any]:
    return {"metadata": {"labels": labels(name)}, "spec": pod_spec(name, probes)}


def job_template(name: str) -> dict[str, Any]:
    t = template(name, probes=False)
    t["metadata"]["labels"] = labels(name, component="migration")
    t["metadata"]["labels"]["app.kubernetes.io/instance"] = f"{name}-migrate"
    t["spec"]["restartPolicy"] = "Never"
    return t


def selector(name: str) -> dict[str, Any]:
    return {"matchLabels": {"app.kubernetes.io/name": name, "app.kubernetes.io/instance": f"{name}-test"}}


def compliant_stack(env: str = "prod") -> list[dict]:
    """A stack that violates no rule: one service (users) with SA, Deployment, Service, HPA, PDB and
    NetworkPolicy; a migration Job; a StatefulSet (postgres) and a CronJob, each with its NetworkPolicy."""
    svc = "users"
    stack = [
        entry(
            "Namespace",
            NAMESPACE,
            {"metadata": {"labels": {**labels(NAMESPACE), METRICS_API_LABEL: "cluster"}}},
            env,
            namespaced=False,
        ),
        entry("ServiceAccount", svc, {"automountServiceAccountToken": False}, env),
        entry("Deployment", svc, {"spec": {"selector": selector(svc), "template": template(svc)}}, env),
        entry(
            "Service",
            svc,
            {
                "spec": {
                    "type": "ClusterIP",
                    "selector": selector(svc)["matchLabels"],
                    "ports": [{"port": 80.0, "targetPort": "http"}],
                }
            },
            env,
        ),
        entry(
            "HorizontalPodAutoscaler",
            svc,
            {
                "spec": {
                    "scaleTargetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": svc},
                    "minReplicas": 2.0,
                    "maxReplicas": 10.0,
                }
            },
            env,
        ),
        entry("PodDisruptionBudget", svc, {"spec": {"selector": selector(svc), "maxUnavailable": 1.0}}, env),
        entry(
            "NetworkPolicy", svc, {"spec": {"podSelector": selector(svc), "policyTypes": ["Ingress"]}}, env
        ),
        entry("Job", "users-migrate", {"spec": {"template": job_template("users")}}, env),
        entry(
            "StatefulSet",
            "postgres",
            {
                "spec": {
                    "selector": selector("postgres"),
                    "serviceName": "postgres",
                    "replicas": 1.0,
                    "template": template("postgres"),
                }
            },
            env,
        ),
        entry(
            "CronJob",
            "cleanup",
            {
                "spec": {
                    "schedule": "0 3 * * *",
                    "jobTemplate": {"spec": {"template": job_template("cleanup")}},
                }
            },
            env,
        ),
        entry(
            "NetworkPolicy",
            "default-deny",
            {"spec": {"podSelector": {}, "policyTypes": ["Ingress", "Egress"]}},
            env,
        ),
    ]
    for sa in ("postgres", "cleanup"):
        stack.append(entry("ServiceAccount", sa, {"automountServiceAccountToken": False}, env))
    # Images come from the environment's own registry (image-from-environment-registry).
    registry = environment_registry(env)
    for e in stack:
        for c in _all_containers(e["props"]):
            c["image"] = c["image"].replace("ghcr.io/commerce-platform/", f"{registry}/")
    return stack


def _all_containers(props: dict) -> list[dict]:
    spec = props.get("spec") or {}
    template = (
        spec.get("template") or ((spec.get("jobTemplate") or {}).get("spec") or {}).get("template") or {}
    )
    return list((template.get("spec") or {}).get("containers") or [])


def helm_release(
    chart: str, version: str | None = "3.13.0", env: str = "prod", repo: str | None = None
) -> dict:
    """A graph entry of a pulumi-kubernetes helm.v3.Release (no Kubernetes object of its own)."""
    props = {"chart": chart, "version": version, "namespace": "kube-system"}
    props["repositoryOpts"] = {"repo": repo or f"https://charts.example.com/{chart}"}
    return {
        "urn": f"urn:pulumi:{env}::commerce-platform::kubernetes:helm.sh/v3:Release::{chart}-release",
        "type": "kubernetes:helm.sh/v3:Release",
        "name": f"{chart}-release",
        "parent": None,
        "dependencies": [],
        "props": props,
    }


def as_resources(stack: list[dict]) -> list[Resource]:
    return [Resource.from_graph_entry(e) for e in stack]


# --- finding and editing objects in a graph's resource list (plain dicts) -------------------------------------


def find(stack: list[dict], kind: str, name: str | None = None) -> dict:
    """The props of the first object of `kind` (named `name`, if given)."""
    for e in stack:
        props = e["props"]
        if props.get("kind") == kind and (name is None or props["metadata"]["name"] == name):
            return props
    raise LookupError(f"no {kind} {name or ''} in the stack")


def remove(stack: list[dict], kind: str, name: str | None = None) -> None:
    props = find(stack, kind, name)
    stack[:] = [e for e in stack if e["props"] is not props]


def pod_template_of(props: dict) -> dict:
    if props["kind"] == "CronJob":
        return props["spec"]["jobTemplate"]["spec"]["template"]
    return props["spec"]["template"]


def first_container(stack: list[dict], kind: str = "Deployment", name: str | None = None) -> dict:
    return pod_template_of(find(stack, kind, name))["spec"]["containers"][0]


def mutated(stack: list[dict], edit) -> list[dict]:
    copy_ = fresh(stack)
    edit(copy_)
    return copy_
