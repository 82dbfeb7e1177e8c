"""ServiceDeployment: everything one service needs to run, scale, roll and migrate safely."""

from __future__ import annotations

import hashlib
import json
import re
from dataclasses import dataclass

import pulumi
import pulumi_kubernetes as k8s

from commerce_platform import catalogue
from commerce_platform.components.baseline import POSTGRES_CLIENT, REDIS_CLIENT
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

core = k8s.core.v1
hpa = k8s.autoscaling.v2
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


def spread(pod_selector: dict[str, str], min_replicas: int) -> list[core.TopologySpreadConstraintArgs]:
    """Across zones where the cluster has them (best effort), and across nodes for real wherever the service
    always runs 2+ replicas (prod): two pods on one node are one node failure from an outage. A one-replica
    environment (dev on a single kind node) keeps the node spread best effort, or its scale-ups could never land."""
    hard = min_replicas >= 2
    return [
        core.TopologySpreadConstraintArgs(
            max_skew=1,
            topology_key="topology.kubernetes.io/zone",
            when_unsatisfiable="ScheduleAnyway",
            label_selector=match(pod_selector),
        ),
        core.TopologySpreadConstraintArgs(
            max_skew=1,
            topology_key="kubernetes.io/hostname",
            when_unsatisfiable="DoNotSchedule" if hard else "ScheduleAnyway",
            min_domains=min_replicas if hard else None,
            label_selector=match(pod_selector),
            # Only the pods of the current ReplicaSet count, so a rolling update is not blocked by the old ones.
            match_label_keys=["pod-template-hash"],
        ),
    ]


def http_probe(path: str, port: int, period: int, failures: int) -> core.ProbeArgs:
    return core.ProbeArgs(
        http_get=core.HTTPGetActionArgs(path=path, port=port),
        period_seconds=period,
        timeout_seconds=2,
        failure_threshold=failures,
    )


def probes(spec: catalogue.ServiceSpec) -> dict[str, core.ProbeArgs]:
    """Started within a minute, restarted after 30 s without /health, out of the Service after 10 s unready."""
    return {
        "startup_probe": http_probe(catalogue.LIVENESS_PATH, spec.port, 2, 30),
        "liveness_probe": http_probe(catalogue.LIVENESS_PATH, spec.port, 10, 3),
        "readiness_probe": http_probe(catalogue.READINESS_PATH, spec.port, 5, 2),
    }


def env_from(
    svc: str, plain_env: dict[str, str], secret_env: dict[str, pulumi.Input[str]]
) -> list[core.EnvVarArgs]:
    """Every variable by reference: plain ones from the ConfigMap, secret ones from the Secret (sorted)."""
    config = [
        core.EnvVarArgs(
            name=key,
            value_from=core.EnvVarSourceArgs(
                config_map_key_ref=core.ConfigMapKeySelectorArgs(name=f"{svc}-config", key=key)
            ),
        )
        for key in sorted(plain_env)
    ]
    return config + [
        core.EnvVarArgs(name=key, value_from=secret_ref(f"{svc}-secrets", key)) for key in sorted(secret_env)
    ]


@dataclass(frozen=True)
class ServicePods:
    """What every pod of one service shares: what it runs, where its env comes from, its resources."""

    spec: catalogue.ServiceSpec
    instance: str  # <service>-<environment>
    image: pulumi.Input[str]
    version: str  # the pod templates' version label (VERSION_LABEL)
    env: list[core.EnvVarArgs]
    limits: core.ResourceRequirementsArgs

    def labels(self, component: str) -> dict[str, str]:
        """A pod template's labels: versioned, plus the client labels the data stores' NetworkPolicies admit."""
        clients = {POSTGRES_CLIENT: "true"} if self.spec.uses_postgres else {}
        if self.spec.uses_redis:
            clients[REDIS_CLIENT] = "true"
        return {**labels(self.spec.name, self.instance, component, self.version), **clients}


def api_container(pods: ServicePods) -> core.ContainerArgs:
    spec = pods.spec
    return container(
        spec.name,
        pods.image,
        uid=APP_UID,
        resources=pods.limits,
        command=uvicorn_argv(spec.app, spec.port),  # the one server command line (service_kit.serve)
        ports=[
            core.ContainerPortArgs(name="http", container_port=spec.port, protocol="TCP"),
            core.ContainerPortArgs(name="metrics", container_port=spec.metrics_port, protocol="TCP"),
        ],
        env=pods.env,
        lifecycle=core.LifecycleArgs(
            pre_stop=core.LifecycleHandlerArgs(sleep=core.SleepActionArgs(seconds=PRESTOP_SLEEP_SECONDS))
        ),
        **probes(spec),
    )


def deployment_spec(
    pods: ServicePods,
    pod_selector: dict[str, str],
    checksums: dict[str, pulumi.Input[str]],
    min_replicas: int,
) -> k8s.apps.v1.DeploymentSpecArgs:
    return k8s.apps.v1.DeploymentSpecArgs(
        # No replicas: the HPA owns the count, and re-applying must not reset it.
        revision_history_limit=5,
        selector=match(pod_selector),
        strategy=k8s.apps.v1.DeploymentStrategyArgs(
            type="RollingUpdate",
            rolling_update=k8s.apps.v1.RollingUpdateDeploymentArgs(max_unavailable=0, max_surge=1),
        ),
        template=pod_template(
            pods.labels("api"),
            annotations=checksums,
            account=pods.spec.name,
            uid=APP_UID,
            termination_grace_period_seconds=TERMINATION_GRACE_SECONDS,
            topology_spread_constraints=spread(pod_selector, min_replicas),
            containers=[api_container(pods)],
        ),
    )


def migration_job_spec(pods: ServicePods, checksum: pulumi.Input[str]) -> k8s.batch.v1.JobSpecArgs:
    """`migrate <package>` once per release, with DATABASE_URL only."""
    return k8s.batch.v1.JobSpecArgs(
        backoff_limit=3,
        template=pod_template(
            pods.labels("migration"),
            annotations={SECRET_CHECKSUM: checksum},
            account=pods.spec.name,
            uid=APP_UID,
            restart_policy="Never",
            containers=[
                container(
                    "migrate",
                    pods.image,
                    uid=APP_UID,
                    resources=pods.limits,
                    command=["migrate", pods.spec.package],
                    env=[e for e in pods.env if e.name == "DATABASE_URL"],
                )
            ],
        ),
    )


def service_spec(spec: catalogue.ServiceSpec, pod_selector: dict[str, str]) -> core.ServiceSpecArgs:
    return core.ServiceSpecArgs(
        type="ClusterIP",
        selector=pod_selector,
        ports=[
            core.ServicePortArgs(name="http", port=spec.port, target_port=spec.port, protocol="TCP"),
            # Scraped through the ServiceMonitor (by this name); never a backend of the Ingress.
            core.ServicePortArgs(
                name="metrics", port=spec.metrics_port, target_port=spec.metrics_port, protocol="TCP"
            ),
        ],
    )


def _resource_metric(name: str, target: hpa.MetricTargetArgs) -> hpa.MetricSpecArgs:
    return hpa.MetricSpecArgs(
        type="Resource", resource=hpa.ResourceMetricSourceArgs(name=name, target=target)
    )


def autoscaler_spec(
    deployment: pulumi.Input[str], scaling: Autoscaling, limit_memory: str
) -> hpa.HorizontalPodAutoscalerSpecArgs:
    """CPU utilisation, and (where set) a share of the memory limit; scale in slowly (the default removes pods
    as fast as load drops)."""
    metrics = [
        _resource_metric(
            "cpu", hpa.MetricTargetArgs(type="Utilization", average_utilization=scaling.cpu_percent)
        )
    ]
    if scaling.memory_percent:
        share = memory_share(limit_memory, scaling.memory_percent)
        metrics.append(
            _resource_metric("memory", hpa.MetricTargetArgs(type="AverageValue", average_value=share))
        )
    return hpa.HorizontalPodAutoscalerSpecArgs(
        scale_target_ref=hpa.CrossVersionObjectReferenceArgs(
            api_version="apps/v1", kind="Deployment", name=deployment
        ),
        min_replicas=scaling.min,
        max_replicas=scaling.max,
        metrics=metrics,
        behavior=hpa.HorizontalPodAutoscalerBehaviorArgs(
            scale_down=hpa.HPAScalingRulesArgs(
                stabilization_window_seconds=300,
                policies=[hpa.HPAScalingPolicyArgs(type="Percent", value=50, period_seconds=60)],
            )
        ),
    )


def disruption_budget_spec(pod_selector: dict[str, str]) -> k8s.policy.v1.PodDisruptionBudgetSpecArgs:
    return k8s.policy.v1.PodDisruptionBudgetSpecArgs(max_unavailable=1, selector=match(pod_selector))


class ServiceDeployment(pulumi.ComponentResource):
    """One service: its identity, config, secret, migration Job, Deployment, Service, HPA and PDB (as attributes)."""

    migration: k8s.batch.v1.Job | None

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

        def meta(object_name: str = svc) -> k8s.meta.v1.ObjectMetaArgs:
            return metadata(object_name, namespace, app_labels)

        self.account = service_account(svc, namespace, app_labels, child)
        self.config = core.ConfigMap(
            f"{svc}-configmap", metadata=meta(f"{svc}-config"), data=plain_env, opts=child
        )
        self.secret = core.Secret(
            f"{svc}-secret",
            metadata=meta(f"{svc}-secrets"),
            type="Opaque",
            string_data=secret_env,
            opts=child,
        )
        self.migration = self._migration(pods, namespace, secret_env, needs) if spec.uses_postgres else None
        self.deployment = k8s.apps.v1.Deployment(
            f"{svc}-deployment",
            metadata=meta(),
            spec=deployment_spec(
                pods, pod_selector, pod_checksums(instance, plain_env, secret_env), release.autoscaling.min
            ),
            # A fixed name: a replace (a new selector: immutable) must delete first; the provider's preview then
            # dry-runs the create under another name (pulumi-kubernetes#3053). Updates still roll.
            opts=pulumi.ResourceOptions(
                parent=self,
                depends_on=[self.config, self.secret, self.account, *needs, *filter(None, [self.migration])],
                delete_before_replace=True,
            ),
        )
        self.service = core.Service(
            f"{svc}-service", metadata=meta(), spec=service_spec(spec, pod_selector), opts=child
        )
        self.hpa, self.pdb = self._availability(svc, meta(), pod_selector, release)
        self.service_name = self.service.metadata.name
        self.image = pulumi.Output.from_input(image)
        self.register_outputs({"service": self.service_name, "image": self.image})

    def _availability(
        self,
        svc: str,
        object_meta: k8s.meta.v1.ObjectMetaArgs,
        pod_selector: dict[str, str],
        release: ServiceRelease,
    ) -> tuple[hpa.HorizontalPodAutoscaler, k8s.policy.v1.PodDisruptionBudget]:
        """How many run (the HPA) and how few may (the PDB: one pod down at a time in a drain)."""
        child = pulumi.ResourceOptions(parent=self)
        scaler = hpa.HorizontalPodAutoscaler(
            f"{svc}-hpa",
            metadata=object_meta,
            spec=autoscaler_spec(
                self.deployment.metadata.name, release.autoscaling, release.resources.limit_memory
            ),
            opts=child,
        )
        budget = k8s.policy.v1.PodDisruptionBudget(
            f"{svc}-pdb", metadata=object_meta, spec=disruption_budget_spec(pod_selector), opts=child
        )
        return scaler, budget

    def _migration(
        self, pods: ServicePods, namespace, secret_env, needs: list[pulumi.Resource]
    ) -> k8s.batch.v1.Job:
        svc = pods.spec.name
        # It reads DATABASE_URL only: a new database credential replaces (re-runs) the Job.
        database_url = {k: v for k, v in secret_env.items() if k == "DATABASE_URL"}
        return k8s.batch.v1.Job(
            f"{svc}-migration",
            metadata=metadata(
                f"{svc}-migrate",
                namespace,
                labels(svc, pods.instance, "migration"),
                annotations=JOB_ANNOTATIONS,
            ),
            spec=migration_job_spec(pods, secret_checksum(f"{pods.instance}/migration", database_url)),
            # A Job's template is immutable: a new image replaces the Job (same name → delete first).
            opts=pulumi.ResourceOptions(
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
