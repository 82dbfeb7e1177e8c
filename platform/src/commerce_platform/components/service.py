"""ServiceDeployment: everything one service needs to run, scale, roll and migrate safely."""

from __future__ import annotations

import hashlib
import json
import re

import pulumi
import pulumi_kubernetes as k8s

from commerce_platform import catalogue
from commerce_platform.components.baseline import POSTGRES_CLIENT, REDIS_CLIENT
from commerce_platform.components.meta import (
    JOB_ANNOTATIONS,
    SECRET_CHECKSUM,
    TYPE_PREFIX,
    container_security,
    labels,
    metadata,
    pod_security,
    resources,
    secret_checksum,
    selector,
    tmp_volume,
)
from commerce_platform.environments import ServiceRelease

core = k8s.core.v1
APP_UID = 1000
# Shutdown budget: the endpoint removal propagates during preStop, then uvicorn drains in-flight requests.
PRESTOP_SLEEP_SECONDS = 5
GRACEFUL_SHUTDOWN_SECONDS = 20
TERMINATION_GRACE_SECONDS = PRESTOP_SLEEP_SECONDS + GRACEFUL_SHUTDOWN_SECONDS + 5


def uvicorn_command(spec: catalogue.ServiceSpec) -> list[str]:
    return [
        "uvicorn",
        spec.app,
        "--host",
        "0.0.0.0",
        "--port",
        str(spec.port),
        "--timeout-graceful-shutdown",
        str(GRACEFUL_SHUTDOWN_SECONDS),
    ]


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
            label_selector=k8s.meta.v1.LabelSelectorArgs(match_labels=pod_selector),
        ),
        core.TopologySpreadConstraintArgs(
            max_skew=1,
            topology_key="kubernetes.io/hostname",
            when_unsatisfiable="DoNotSchedule" if hard else "ScheduleAnyway",
            min_domains=min_replicas if hard else None,
            label_selector=k8s.meta.v1.LabelSelectorArgs(match_labels=pod_selector),
            # Only the pods of the current ReplicaSet count, so a rolling update is not blocked by the old ones.
            match_label_keys=["pod-template-hash"],
        ),
    ]


def _http_probe(path: str, port: int, period: int, failures: int) -> core.ProbeArgs:
    return core.ProbeArgs(
        http_get=core.HTTPGetActionArgs(path=path, port=port),
        period_seconds=period,
        timeout_seconds=2,
        failure_threshold=failures,
    )


class ServiceDeployment(pulumi.ComponentResource):
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
        svc = spec.name
        instance = f"{svc}-{environment}"
        app_labels = labels(svc, instance, "api")  # objects' metadata: no version (VERSION_LABEL)
        pod_selector = selector(svc, instance, "api")
        clients = {POSTGRES_CLIENT: "true"} if spec.uses_postgres else {}
        if spec.uses_redis:
            clients[REDIS_CLIENT] = "true"
        pod_labels = {**labels(svc, instance, "api", version), **clients}
        child = pulumi.ResourceOptions(parent=self)
        tmp, tmp_mount = tmp_volume()

        account = core.ServiceAccount(
            f"{svc}-serviceaccount",
            metadata=metadata(svc, namespace, app_labels),
            automount_service_account_token=False,
            opts=child,
        )
        config = core.ConfigMap(
            f"{svc}-configmap",
            metadata=metadata(f"{svc}-config", namespace, app_labels),
            data=plain_env,
            opts=child,
        )
        secret = core.Secret(
            f"{svc}-secret",
            metadata=metadata(f"{svc}-secrets", namespace, app_labels),
            type="Opaque",
            string_data=secret_env,
            opts=child,
        )
        env = [
            core.EnvVarArgs(
                name=key,
                value_from=core.EnvVarSourceArgs(
                    config_map_key_ref=core.ConfigMapKeySelectorArgs(name=f"{svc}-config", key=key)
                ),
            )
            for key in sorted(plain_env)
        ] + [
            core.EnvVarArgs(
                name=key,
                value_from=core.EnvVarSourceArgs(
                    secret_key_ref=core.SecretKeySelectorArgs(name=f"{svc}-secrets", key=key)
                ),
            )
            for key in sorted(secret_env)
        ]
        res = release.resources
        container_resources = resources(res.cpu, res.memory, res.limit_memory)

        rollout_after = [config, secret, account, *needs]
        if spec.uses_postgres:
            migration_labels = labels(svc, instance, "migration")
            # The migration reads DATABASE_URL only: a new database credential replaces (re-runs) the Job.
            migration_checksum = secret_checksum(
                f"{instance}/migration", {k: v for k, v in secret_env.items() if k == "DATABASE_URL"}
            )
            migrate = k8s.batch.v1.Job(
                f"{svc}-migration",
                metadata=metadata(f"{svc}-migrate", namespace, migration_labels, annotations=JOB_ANNOTATIONS),
                spec=k8s.batch.v1.JobSpecArgs(
                    backoff_limit=3,
                    template=core.PodTemplateSpecArgs(
                        metadata=k8s.meta.v1.ObjectMetaArgs(
                            labels={**labels(svc, instance, "migration", version), **clients},
                            annotations={SECRET_CHECKSUM: migration_checksum},
                        ),
                        spec=core.PodSpecArgs(
                            service_account_name=svc,
                            automount_service_account_token=False,
                            restart_policy="Never",
                            security_context=pod_security(APP_UID),
                            containers=[
                                core.ContainerArgs(
                                    name="migrate",
                                    image=image,
                                    command=["migrate", spec.package],
                                    env=[e for e in env if e.name == "DATABASE_URL"],
                                    resources=container_resources,
                                    security_context=container_security(APP_UID),
                                    volume_mounts=[tmp_mount],
                                )
                            ],
                            volumes=[tmp],
                        ),
                    ),
                ),
                # A Job's template is immutable: a new image replaces the Job (same name → delete first).
                opts=pulumi.ResourceOptions(
                    parent=self, depends_on=[secret, account, *needs], delete_before_replace=True
                ),
            )
            rollout_after.append(migrate)

        config_checksum = hashlib.sha256(json.dumps(plain_env, sort_keys=True).encode()).hexdigest()
        deployment = k8s.apps.v1.Deployment(
            f"{svc}-deployment",
            metadata=metadata(svc, namespace, app_labels),
            spec=k8s.apps.v1.DeploymentSpecArgs(
                # No replicas: the HPA owns the count, and re-applying must not reset it.
                revision_history_limit=5,
                selector=k8s.meta.v1.LabelSelectorArgs(match_labels=pod_selector),
                strategy=k8s.apps.v1.DeploymentStrategyArgs(
                    type="RollingUpdate",
                    rolling_update=k8s.apps.v1.RollingUpdateDeploymentArgs(max_unavailable=0, max_surge=1),
                ),
                template=core.PodTemplateSpecArgs(
                    metadata=k8s.meta.v1.ObjectMetaArgs(
                        labels=pod_labels,
                        annotations={
                            "commerce-platform/config-checksum": config_checksum,
                            SECRET_CHECKSUM: secret_checksum(instance, secret_env),
                        },
                    ),
                    spec=core.PodSpecArgs(
                        service_account_name=svc,
                        automount_service_account_token=False,
                        security_context=pod_security(APP_UID),
                        termination_grace_period_seconds=TERMINATION_GRACE_SECONDS,
                        topology_spread_constraints=spread(pod_selector, release.autoscaling.min),
                        containers=[
                            core.ContainerArgs(
                                name=svc,
                                image=image,
                                command=uvicorn_command(spec),
                                ports=[
                                    core.ContainerPortArgs(
                                        name="http", container_port=spec.port, protocol="TCP"
                                    ),
                                    core.ContainerPortArgs(
                                        name="metrics", container_port=spec.metrics_port, protocol="TCP"
                                    ),
                                ],
                                env=env,
                                startup_probe=_http_probe(catalogue.LIVENESS_PATH, spec.port, 2, 30),
                                liveness_probe=_http_probe(catalogue.LIVENESS_PATH, spec.port, 10, 3),
                                readiness_probe=_http_probe(catalogue.READINESS_PATH, spec.port, 5, 2),
                                lifecycle=core.LifecycleArgs(
                                    pre_stop=core.LifecycleHandlerArgs(
                                        sleep=core.SleepActionArgs(seconds=PRESTOP_SLEEP_SECONDS)
                                    )
                                ),
                                resources=container_resources,
                                security_context=container_security(APP_UID),
                                volume_mounts=[tmp_mount],
                            )
                        ],
                        volumes=[tmp],
                    ),
                ),
            ),
            # A fixed name: a replace (a new selector: immutable) must delete first; the provider's preview then
            # dry-runs the create under another name (pulumi-kubernetes#3053). Updates still roll.
            opts=pulumi.ResourceOptions(parent=self, depends_on=rollout_after, delete_before_replace=True),
        )
        service = core.Service(
            f"{svc}-service",
            metadata=metadata(svc, namespace, app_labels),
            spec=core.ServiceSpecArgs(
                type="ClusterIP",
                selector=pod_selector,
                ports=[
                    core.ServicePortArgs(name="http", port=spec.port, target_port=spec.port, protocol="TCP"),
                    # Scraped through the ServiceMonitor (by this name); never a backend of the Ingress.
                    core.ServicePortArgs(
                        name="metrics", port=spec.metrics_port, target_port=spec.metrics_port, protocol="TCP"
                    ),
                ],
            ),
            opts=child,
        )
        scaling = release.autoscaling
        k8s.autoscaling.v2.HorizontalPodAutoscaler(
            f"{svc}-hpa",
            metadata=metadata(svc, namespace, app_labels),
            spec=k8s.autoscaling.v2.HorizontalPodAutoscalerSpecArgs(
                scale_target_ref=k8s.autoscaling.v2.CrossVersionObjectReferenceArgs(
                    api_version="apps/v1", kind="Deployment", name=deployment.metadata.name
                ),
                min_replicas=scaling.min,
                max_replicas=scaling.max,
                metrics=[
                    k8s.autoscaling.v2.MetricSpecArgs(
                        type="Resource",
                        resource=k8s.autoscaling.v2.ResourceMetricSourceArgs(
                            name="cpu",
                            target=k8s.autoscaling.v2.MetricTargetArgs(
                                type="Utilization", average_utilization=scaling.cpu_percent
                            ),
                        ),
                    ),
                    *(
                        [
                            k8s.autoscaling.v2.MetricSpecArgs(
                                type="Resource",
                                resource=k8s.autoscaling.v2.ResourceMetricSourceArgs(
                                    name="memory",
                                    target=k8s.autoscaling.v2.MetricTargetArgs(
                                        type="AverageValue",
                                        average_value=memory_share(res.limit_memory, scaling.memory_percent),
                                    ),
                                ),
                            )
                        ]
                        if scaling.memory_percent
                        else []
                    ),
                ],
                # Scale in slowly (the HPA's default removes pods as fast as load drops).
                behavior=k8s.autoscaling.v2.HorizontalPodAutoscalerBehaviorArgs(
                    scale_down=k8s.autoscaling.v2.HPAScalingRulesArgs(
                        stabilization_window_seconds=300,
                        policies=[
                            k8s.autoscaling.v2.HPAScalingPolicyArgs(
                                type="Percent", value=50, period_seconds=60
                            )
                        ],
                    )
                ),
            ),
            opts=child,
        )
        k8s.policy.v1.PodDisruptionBudget(
            f"{svc}-pdb",
            metadata=metadata(svc, namespace, app_labels),
            spec=k8s.policy.v1.PodDisruptionBudgetSpecArgs(
                max_unavailable=1, selector=k8s.meta.v1.LabelSelectorArgs(match_labels=pod_selector)
            ),
            opts=child,
        )
        self.service_name = service.metadata.name
        self.image = pulumi.Output.from_input(image)
        self.register_outputs({"service": self.service_name, "image": self.image})
