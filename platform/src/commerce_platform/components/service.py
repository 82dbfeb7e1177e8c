"""ServiceDeployment: everything one service needs to run, scale, roll and migrate safely."""

from __future__ import annotations

import hashlib
import json
import re
from dataclasses import dataclass

import pulumi

from commerce_platform import catalogue
from commerce_platform.components.baseline import POSTGRES_CLIENT, REDIS_CLIENT
from commerce_platform.components.kube import KubeObject, Manifest, fields, manifest
from commerce_platform.components.meta import (
    JOB_ANNOTATIONS,
    SECRET_CHECKSUM,
    TYPE_PREFIX,
    container,
    labels,
    match,
    metadata,
    pod_template,
    resources,
    secret_checksum,
    secret_ref,
    selector,
    service_account,
)
from commerce_platform.environments import Autoscaling, ServiceRelease
from service_kit.serve import GRACEFUL_SHUTDOWN_SECONDS, uvicorn_argv

APP_UID = 1000
# Shutdown budget: the endpoint removal propagates during preStop, then uvicorn drains in-flight requests
# (GRACEFUL_SHUTDOWN_SECONDS, the server's own setting in service_kit.serve).
PRESTOP_SLEEP_SECONDS = 5
TERMINATION_GRACE_SECONDS = PRESTOP_SLEEP_SECONDS + GRACEFUL_SHUTDOWN_SECONDS + 5


MEMORY_UNITS = {
    "Ki": 2**10,
    "Mi": 2**20,
    "Gi": 2**30,
    "Ti": 2**40,
    "k": 10**3,
    "M": 10**6,
    "G": 10**9,
    "T": 10**12,
}


def memory_share(quantity: str, percent: int) -> str:
    """`percent` of a memory quantity, in Mi (HPA AverageValue): memory_share("512Mi", 85) == "435Mi"."""
    match = re.fullmatch(r"([0-9.]+)([A-Za-z]*)", quantity)
    number, unit = float(match.group(1)), match.group(2)
    size = number * MEMORY_UNITS.get(unit, 1)
    return f"{int(size * percent / 100 / 2**20)}Mi"


def spread(pod_selector: dict[str, str], min_replicas: int) -> list[Manifest]:
    """Across zones where the cluster has them (best effort), and across nodes for real wherever the service
    always runs 2+ replicas (prod): two pods on one node are one node failure from an outage. A one-replica
    environment (dev on a single kind node) keeps the node spread best effort, or its scale-ups could never land."""
    hard = min_replicas >= 2
    return [
        {
            "maxSkew": 1,
            "topologyKey": "topology.kubernetes.io/zone",
            "whenUnsatisfiable": "ScheduleAnyway",
            "labelSelector": match(pod_selector),
        },
        fields(
            maxSkew=1,
            topologyKey="kubernetes.io/hostname",
            whenUnsatisfiable="DoNotSchedule" if hard else "ScheduleAnyway",
            minDomains=min_replicas if hard else None,
            labelSelector=match(pod_selector),
            # Only the pods of the current ReplicaSet count, so a rolling update is not blocked by the old ones.
            matchLabelKeys=["pod-template-hash"],
        ),
    ]


def http_probe(path: str, port: int, period: int, failures: int) -> Manifest:
    return {
        "httpGet": {"path": path, "port": port},
        "periodSeconds": period,
        "timeoutSeconds": 2,
        "failureThreshold": failures,
    }


def probes(spec: catalogue.ServiceSpec) -> dict[str, Manifest]:
    """Started within a minute, restarted after 30 s without /health, out of the Service after 10 s unready."""
    return {
        "startupProbe": http_probe(catalogue.LIVENESS_PATH, spec.port, 2, 30),
        "livenessProbe": http_probe(catalogue.LIVENESS_PATH, spec.port, 10, 3),
        "readinessProbe": http_probe(catalogue.READINESS_PATH, spec.port, 5, 2),
    }


def env_from(svc: str, plain_env: dict[str, str], secret_env: dict[str, pulumi.Input[str]]) -> list[Manifest]:
    """Every variable by reference: plain ones from the ConfigMap, secret ones from the Secret (sorted)."""
    config = [
        {"name": key, "valueFrom": {"configMapKeyRef": {"name": f"{svc}-config", "key": key}}}
        for key in sorted(plain_env)
    ]
    return config + [
        {"name": key, "valueFrom": secret_ref(f"{svc}-secrets", key)} for key in sorted(secret_env)
    ]


@dataclass(frozen=True)
class ServicePods:
    """What every pod of one service shares: what it runs, where its env comes from, its resources."""

    spec: catalogue.ServiceSpec
    instance: str  # <service>-<environment>
    image: pulumi.Input[str]
    version: str  # the pod templates' version label (VERSION_LABEL)
    env: list[Manifest]
    limits: Manifest

    def labels(self, component: str) -> dict[str, str]:
        """A pod template's labels: versioned, plus the client labels the data stores' NetworkPolicies admit."""
        clients = {POSTGRES_CLIENT: "true"} if self.spec.uses_postgres else {}
        if self.spec.uses_redis:
            clients[REDIS_CLIENT] = "true"
        return {**labels(self.spec.name, self.instance, component, self.version), **clients}


def api_container(pods: ServicePods) -> Manifest:
    spec = pods.spec
    return container(
        spec.name,
        pods.image,
        uid=APP_UID,
        resources=pods.limits,
        command=uvicorn_argv(spec.app, spec.port),  # the one server command line (service_kit.serve)
        ports=[
            {"name": "http", "containerPort": spec.port, "protocol": "TCP"},
            {"name": "metrics", "containerPort": spec.metrics_port, "protocol": "TCP"},
        ],
        env=pods.env,
        lifecycle={"preStop": {"sleep": {"seconds": PRESTOP_SLEEP_SECONDS}}},
        **probes(spec),
    )


def deployment_spec(
    pods: ServicePods,
    pod_selector: dict[str, str],
    checksums: dict[str, pulumi.Input[str]],
    min_replicas: int,
) -> Manifest:
    return {
        # No replicas: the HPA owns the count, and re-applying must not reset it.
        "revisionHistoryLimit": 5,
        "selector": match(pod_selector),
        "strategy": {"type": "RollingUpdate", "rollingUpdate": {"maxUnavailable": 0, "maxSurge": 1}},
        "template": pod_template(
            pods.labels("api"),
            annotations=checksums,
            account=pods.spec.name,
            uid=APP_UID,
            terminationGracePeriodSeconds=TERMINATION_GRACE_SECONDS,
            topologySpreadConstraints=spread(pod_selector, min_replicas),
            containers=[api_container(pods)],
        ),
    }


def migration_job_spec(pods: ServicePods, checksum: pulumi.Input[str]) -> Manifest:
    """`migrate <package>` once per release, with DATABASE_URL only."""
    return {
        "backoffLimit": 3,
        "template": pod_template(
            pods.labels("migration"),
            annotations={SECRET_CHECKSUM: checksum},
            account=pods.spec.name,
            uid=APP_UID,
            restartPolicy="Never",
            containers=[
                container(
                    "migrate",
                    pods.image,
                    uid=APP_UID,
                    resources=pods.limits,
                    command=["migrate", pods.spec.package],
                    env=[e for e in pods.env if e["name"] == "DATABASE_URL"],
                )
            ],
        ),
    }


def service_spec(spec: catalogue.ServiceSpec, pod_selector: dict[str, str]) -> Manifest:
    return {
        "type": "ClusterIP",
        "selector": pod_selector,
        "ports": [
            {"name": "http", "port": spec.port, "targetPort": spec.port, "protocol": "TCP"},
            # Scraped through the ServiceMonitor (by this name); never a backend of the Ingress.
            {
                "name": "metrics",
                "port": spec.metrics_port,
                "targetPort": spec.metrics_port,
                "protocol": "TCP",
            },
        ],
    }


def _resource_metric(name: str, target: Manifest) -> Manifest:
    return {"type": "Resource", "resource": {"name": name, "target": target}}


def autoscaler_spec(deployment: pulumi.Input[str], scaling: Autoscaling, limit_memory: str) -> Manifest:
    """CPU utilisation, and (where set) a share of the memory limit; scale in slowly (the default removes pods
    as fast as load drops)."""
    metrics = [_resource_metric("cpu", {"type": "Utilization", "averageUtilization": scaling.cpu_percent})]
    if scaling.memory_percent:
        share = memory_share(limit_memory, scaling.memory_percent)
        metrics.append(_resource_metric("memory", {"type": "AverageValue", "averageValue": share}))
    return {
        "scaleTargetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": deployment},
        "minReplicas": scaling.min,
        "maxReplicas": scaling.max,
        "metrics": metrics,
        "behavior": {
            "scaleDown": {
                "stabilizationWindowSeconds": 300,
                "policies": [{"type": "Percent", "value": 50, "periodSeconds": 60}],
            }
        },
    }


def disruption_budget_spec(pod_selector: dict[str, str]) -> Manifest:
    return {"maxUnavailable": 1, "selector": match(pod_selector)}


class ServiceDeployment(pulumi.ComponentResource):
    """One service: its identity, config, secret, migration Job, Deployment, Service, HPA and PDB (as attributes)."""

    migration: KubeObject | None

    def __init__(
        self,
        name: str,
        *,
        spec: catalogue.ServiceSpec,
        release: ServiceRelease,
        environment: str,
        namespace: pulumi.Input[str],
        image: pulumi.Input[str],
        version: str,
        plain_env: dict[str, str],
        secret_env: dict[str, pulumi.Output[str]],
        needs: list[pulumi.Resource],
        opts: pulumi.ResourceOptions | None = None,
    ):
        super().__init__(f"{TYPE_PREFIX}:app:ServiceDeployment", name, None, opts)
        svc, instance, res = spec.name, f"{spec.name}-{environment}", release.resources
        limits = resources(res.cpu, res.memory, res.limit_memory)
        pods = ServicePods(spec, instance, image, version, env_from(svc, plain_env, secret_env), limits)
        pod_selector = selector(svc, instance, "api")
        app_labels = labels(svc, instance, "api")  # objects' metadata: no version (VERSION_LABEL)
        child = pulumi.ResourceOptions(parent=self)

        def meta(object_name: str = svc) -> Manifest:
            return metadata(object_name, namespace, app_labels)

        self.account = service_account(svc, namespace, app_labels, child)
        config = manifest("v1", "ConfigMap", meta(f"{svc}-config"), data=plain_env)
        self.config = KubeObject(f"{svc}-configmap", config, child)
        secret = manifest("v1", "Secret", meta(f"{svc}-secrets"), type="Opaque", stringData=secret_env)
        self.secret = KubeObject(f"{svc}-secret", secret, child)
        self.migration = self._migration(pods, namespace, secret_env, needs) if spec.uses_postgres else None
        checksums = pod_checksums(instance, plain_env, secret_env)
        self.deployment = KubeObject(
            f"{svc}-deployment",
            manifest(
                "apps/v1",
                "Deployment",
                meta(),
                spec=deployment_spec(pods, pod_selector, checksums, release.autoscaling.min),
            ),
            # A fixed name: a replace (a new selector: immutable) must delete first; the provider's preview then
            # dry-runs the create under another name (pulumi-kubernetes#3053). Updates still roll.
            pulumi.ResourceOptions(
                parent=self,
                depends_on=[self.config, self.secret, self.account, *needs, *filter(None, [self.migration])],
                delete_before_replace=True,
            ),
        )
        service = manifest("v1", "Service", meta(), spec=service_spec(spec, pod_selector))
        self.service = KubeObject(f"{svc}-service", service, child)
        self.hpa, self.pdb = self._availability(svc, meta(), pod_selector, release)
        self.service_name = self.service.metadata["name"]
        self.image = pulumi.Output.from_input(image)
        self.register_outputs({"service": self.service_name, "image": self.image})

    def _availability(
        self,
        svc: str,
        object_meta: Manifest,
        pod_selector: dict[str, str],
        release: ServiceRelease,
    ) -> tuple[KubeObject, KubeObject]:
        """How many run (the HPA) and how few may (the PDB: one pod down at a time in a drain)."""
        child = pulumi.ResourceOptions(parent=self)
        scaling = autoscaler_spec(
            self.deployment.metadata["name"], release.autoscaling, release.resources.limit_memory
        )
        scaler = KubeObject(
            f"{svc}-hpa",
            manifest("autoscaling/v2", "HorizontalPodAutoscaler", object_meta, spec=scaling),
            child,
        )
        budget = KubeObject(
            f"{svc}-pdb",
            manifest(
                "policy/v1", "PodDisruptionBudget", object_meta, spec=disruption_budget_spec(pod_selector)
            ),
            child,
        )
        return scaler, budget

    def _migration(
        self, pods: ServicePods, namespace, secret_env, needs: list[pulumi.Resource]
    ) -> KubeObject:
        svc = pods.spec.name
        # It reads DATABASE_URL only: a new database credential replaces (re-runs) the Job.
        database_url = {k: v for k, v in secret_env.items() if k == "DATABASE_URL"}
        job_labels = labels(svc, pods.instance, "migration")
        return KubeObject(
            f"{svc}-migration",
            manifest(
                "batch/v1",
                "Job",
                metadata(f"{svc}-migrate", namespace, job_labels, annotations=JOB_ANNOTATIONS),
                spec=migration_job_spec(pods, secret_checksum(f"{pods.instance}/migration", database_url)),
            ),
            # A Job's template is immutable: a new image replaces the Job (same name → delete first).
            pulumi.ResourceOptions(
                parent=self, depends_on=[self.secret, self.account, *needs], delete_before_replace=True
            ),
        )


def pod_checksums(
    instance: str, plain_env: dict[str, str], secret_env: dict[str, pulumi.Output[str]]
) -> dict[str, pulumi.Input[str]]:
    """Pod template annotations: a changed config or credential rolls the pods like a new image does."""
    config = hashlib.sha256(json.dumps(plain_env, sort_keys=True).encode()).hexdigest()
    return {
        "commerce-platform/config-checksum": config,
        SECRET_CHECKSUM: secret_checksum(instance, secret_env),
    }
