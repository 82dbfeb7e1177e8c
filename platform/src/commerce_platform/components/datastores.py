"""Postgres and Redis: in-cluster (StatefulSet / Deployment with password auth) or external by secret URL.

Either way each component hands the services secret connection URLs; services never learn which mode it is.
"""

from __future__ import annotations

from urllib.parse import quote

import pulumi
import pulumi_kubernetes as k8s

from commerce_platform import catalogue, dbinit
from commerce_platform.components.baseline import POSTGRES_CLIENT, POSTGRES_PORT
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
from commerce_platform.environments import Environment
from commerce_platform.secrets import PlatformSecrets

core = k8s.core.v1
REDIS_PORT = 6379


def _secret_ref(secret: str, key: str) -> core.EnvVarSourceArgs:
    return core.EnvVarSourceArgs(secret_key_ref=core.SecretKeySelectorArgs(name=secret, key=key))


def _service_account(parent: pulumi.Resource, name: str, namespace, obj_labels: dict) -> core.ServiceAccount:
    """Its own identity with no API token: data stores never talk to the Kubernetes API."""
    return core.ServiceAccount(
        f"{name}-serviceaccount",
        metadata=metadata(name, namespace, obj_labels),
        automount_service_account_token=False,
        opts=pulumi.ResourceOptions(parent=parent),
    )


def _image_version(image: str) -> str:
    tag = image.split("@")[0].rsplit(":", 1)
    return tag[1] if len(tag) == 2 and "/" not in tag[1] else "latest"


class Postgres(pulumi.ComponentResource):
    """One Postgres for the environment; one database and login per service (created by an idempotent Job)."""

    database_urls: dict[str, pulumi.Output[str]]
    ready: list[pulumi.Resource]

    def __init__(
        self,
        name: str,
        env: Environment,
        namespace: pulumi.Input[str],
        services: tuple[catalogue.ServiceSpec, ...],
        secrets: PlatformSecrets,
        opts: pulumi.ResourceOptions | None = None,
    ):
        super().__init__(f"{TYPE_PREFIX}:data:Postgres", name, None, opts)
        clients = [s.name for s in services if s.uses_postgres]
        self.ready = []
        if env.spec.postgres.mode == "external":
            self.database_urls = {svc: secrets.database_url(svc) for svc in clients}
        else:
            host = pulumi.Output.concat("postgres.", namespace, ".svc.cluster.local")
            self.database_urls = {
                svc: pulumi.Output.all(host, secrets.db_password(svc)).apply(
                    lambda args, svc=svc: (
                        f"postgresql://{svc}:{quote(args[1], safe='')}@{args[0]}:{POSTGRES_PORT}/{svc}"
                    )
                )
                for svc in clients
            }
            self._in_cluster(env, namespace, clients, secrets, host)
        self.register_outputs({"database_urls": self.database_urls})

    def _in_cluster(self, env, namespace, clients: list[str], secrets: PlatformSecrets, host) -> None:
        spec = env.spec.postgres
        app_labels = labels("postgres", f"postgres-{env.name}", "database", _image_version(spec.image))
        pod_selector = selector("postgres", f"postgres-{env.name}", "database")
        child = pulumi.ResourceOptions(parent=self)
        credential_values = {
            "POSTGRES_PASSWORD": secrets.get("postgresPassword"),
            **{f"{db.upper()}_PASSWORD": secrets.db_password(db) for db in clients},
        }
        credentials = core.Secret(
            "postgres-credentials",
            metadata=metadata("postgres-credentials", namespace, app_labels),
            type="Opaque",
            string_data=credential_values,
            opts=child,
        )
        account = _service_account(self, "postgres", namespace, app_labels)
        service = core.Service(
            "postgres-service",
            metadata=metadata("postgres", namespace, app_labels),
            spec=core.ServiceSpecArgs(
                cluster_ip="None",  # headless: stable DNS for the StatefulSet pod
                selector=pod_selector,
                ports=[core.ServicePortArgs(name="postgres", port=POSTGRES_PORT, target_port=POSTGRES_PORT)],
            ),
            opts=child,
        )
        tmp, tmp_mount = tmp_volume()
        retention = "Retain" if spec.retain_volume else "Delete"
        statefulset = k8s.apps.v1.StatefulSet(
            "postgres-statefulset",
            metadata=metadata("postgres", namespace, app_labels),
            spec=k8s.apps.v1.StatefulSetSpecArgs(
                service_name="postgres",
                replicas=1,
                selector=k8s.meta.v1.LabelSelectorArgs(match_labels=pod_selector),
                persistent_volume_claim_retention_policy=k8s.apps.v1.StatefulSetPersistentVolumeClaimRetentionPolicyArgs(
                    when_deleted=retention, when_scaled=retention
                ),
                template=core.PodTemplateSpecArgs(
                    metadata=k8s.meta.v1.ObjectMetaArgs(labels=app_labels),
                    spec=core.PodSpecArgs(
                        service_account_name="postgres",
                        automount_service_account_token=False,
                        security_context=pod_security(spec.uid),
                        containers=[
                            core.ContainerArgs(
                                name="postgres",
                                image=spec.image,
                                ports=[core.ContainerPortArgs(name="postgres", container_port=POSTGRES_PORT)],
                                env=[
                                    core.EnvVarArgs(
                                        name="POSTGRES_PASSWORD",
                                        value_from=_secret_ref("postgres-credentials", "POSTGRES_PASSWORD"),
                                    ),
                                    core.EnvVarArgs(name="PGDATA", value="/var/lib/postgresql/data/pgdata"),
                                ],
                                readiness_probe=core.ProbeArgs(
                                    exec_=core.ExecActionArgs(
                                        command=["pg_isready", "-U", "postgres", "-h", "127.0.0.1"]
                                    ),
                                    period_seconds=5,
                                ),
                                liveness_probe=core.ProbeArgs(
                                    exec_=core.ExecActionArgs(
                                        command=["pg_isready", "-U", "postgres", "-h", "127.0.0.1"]
                                    ),
                                    period_seconds=10,
                                    failure_threshold=6,
                                ),
                                resources=resources(
                                    spec.resources.cpu, spec.resources.memory, spec.resources.limit_memory
                                ),
                                security_context=container_security(spec.uid),
                                volume_mounts=[
                                    core.VolumeMountArgs(name="data", mount_path="/var/lib/postgresql/data"),
                                    core.VolumeMountArgs(name="run", mount_path="/var/run/postgresql"),
                                    tmp_mount,
                                ],
                            )
                        ],
                        volumes=[core.VolumeArgs(name="run", empty_dir=core.EmptyDirVolumeSourceArgs()), tmp],
                    ),
                ),
                volume_claim_templates=[
                    core.PersistentVolumeClaimArgs(
                        metadata=k8s.meta.v1.ObjectMetaArgs(name="data", labels=app_labels),
                        spec=core.PersistentVolumeClaimSpecArgs(
                            access_modes=["ReadWriteOnce"],
                            storage_class_name=spec.storage_class,
                            resources=core.VolumeResourceRequirementsArgs(requests={"storage": spec.storage}),
                        ),
                    )
                ],
            ),
            # Fixed name: a replace (a new selector: immutable) deletes first, as for the Deployments; the data
            # stays in the PVC `data-postgres-0`, which the new StatefulSet mounts again. Retained data survives
            # `pulumi destroy` and any replace: protected (the Namespace too, baseline.py).
            opts=pulumi.ResourceOptions(
                parent=self,
                depends_on=[credentials, service, account],
                delete_before_replace=True,
                protect=spec.retain_volume,
            ),
        )
        tmp, tmp_mount = tmp_volume()
        init_labels = labels(
            "postgres-init", f"postgres-{env.name}", "database-init", _image_version(spec.image)
        )
        script = core.ConfigMap(
            "postgres-init-script",
            metadata=metadata("postgres-init-script", namespace, init_labels),
            data={"init.sql": dbinit.psql_script(clients)},
            opts=child,
        )
        job = k8s.batch.v1.Job(
            "postgres-init-job",
            metadata=metadata("postgres-init", namespace, init_labels, annotations=JOB_ANNOTATIONS),
            spec=k8s.batch.v1.JobSpecArgs(
                backoff_limit=10,  # retries while Postgres is still starting
                template=core.PodTemplateSpecArgs(
                    # The init sets every login's password: a changed credential replaces (re-runs) the Job.
                    metadata=k8s.meta.v1.ObjectMetaArgs(
                        labels={**init_labels, POSTGRES_CLIENT: "true"},
                        annotations={
                            SECRET_CHECKSUM: secret_checksum(f"postgres-{env.name}/init", credential_values)
                        },
                    ),
                    spec=core.PodSpecArgs(
                        restart_policy="OnFailure",
                        service_account_name="postgres",
                        automount_service_account_token=False,
                        security_context=pod_security(spec.uid),
                        containers=[
                            core.ContainerArgs(
                                name="init",
                                image=spec.image,
                                command=["psql", "-v", "ON_ERROR_STOP=1", "-f", "/scripts/init.sql"],
                                env=[
                                    core.EnvVarArgs(name="PGHOST", value=host),
                                    core.EnvVarArgs(name="PGPORT", value=str(POSTGRES_PORT)),
                                    core.EnvVarArgs(name="PGUSER", value="postgres"),
                                    core.EnvVarArgs(name="PGDATABASE", value="postgres"),
                                    core.EnvVarArgs(
                                        name="PGPASSWORD",
                                        value_from=_secret_ref("postgres-credentials", "POSTGRES_PASSWORD"),
                                    ),
                                    *[
                                        core.EnvVarArgs(
                                            name=f"{db.upper()}_PASSWORD",
                                            value_from=_secret_ref(
                                                "postgres-credentials", f"{db.upper()}_PASSWORD"
                                            ),
                                        )
                                        for db in clients
                                    ],
                                ],
                                resources=resources("50m", "64Mi", "128Mi"),
                                security_context=container_security(spec.uid),
                                volume_mounts=[
                                    core.VolumeMountArgs(
                                        name="script", mount_path="/scripts", read_only=True
                                    ),
                                    tmp_mount,
                                ],
                            )
                        ],
                        volumes=[
                            core.VolumeArgs(
                                name="script",
                                config_map=core.ConfigMapVolumeSourceArgs(name="postgres-init-script"),
                            ),
                            tmp,
                        ],
                    ),
                ),
            ),
            # A Job's pod template is immutable: a changed script replaces the Job (same name → delete first).
            opts=pulumi.ResourceOptions(
                parent=self,
                depends_on=[statefulset, script, credentials, account],
                delete_before_replace=True,
            ),
        )
        self.ready = [job]


class Redis(pulumi.ComponentResource):
    """A cache: in-cluster with password auth and no persistence, or an external URL."""

    url: pulumi.Output[str]

    def __init__(
        self,
        name: str,
        env: Environment,
        namespace: pulumi.Input[str],
        secrets: PlatformSecrets,
        opts: pulumi.ResourceOptions | None = None,
    ):
        super().__init__(f"{TYPE_PREFIX}:data:Redis", name, None, opts)
        spec = env.spec.redis
        if spec.mode == "external":
            self.url = secrets.get("redisUrl")
        else:
            password = secrets.get("redisPassword")
            self.url = pulumi.Output.all(namespace, password).apply(
                lambda a: f"redis://:{quote(a[1], safe='')}@redis.{a[0]}.svc.cluster.local:{REDIS_PORT}/0"
            )
            self._in_cluster(env, namespace, password)
        self.register_outputs({"url": self.url})

    def _in_cluster(self, env: Environment, namespace, password) -> None:
        spec = env.spec.redis
        app_labels = labels("redis", f"redis-{env.name}", "cache", _image_version(spec.image))
        pod_selector = selector("redis", f"redis-{env.name}", "cache")
        child = pulumi.ResourceOptions(parent=self)
        credentials = core.Secret(
            "redis-credentials",
            metadata=metadata("redis-credentials", namespace, app_labels),
            type="Opaque",
            string_data={"REDIS_PASSWORD": password},
            opts=child,
        )
        account = _service_account(self, "redis", namespace, app_labels)
        tmp, tmp_mount = tmp_volume()
        k8s.apps.v1.Deployment(
            "redis-deployment",
            metadata=metadata("redis", namespace, app_labels),
            spec=k8s.apps.v1.DeploymentSpecArgs(
                replicas=1,
                strategy=k8s.apps.v1.DeploymentStrategyArgs(type="Recreate"),
                selector=k8s.meta.v1.LabelSelectorArgs(match_labels=pod_selector),
                template=core.PodTemplateSpecArgs(
                    # A new password restarts Redis with it (the clients roll on the same checksum change).
                    metadata=k8s.meta.v1.ObjectMetaArgs(
                        labels=app_labels,
                        annotations={
                            SECRET_CHECKSUM: secret_checksum(
                                f"redis-{env.name}", {"REDIS_PASSWORD": password}
                            )
                        },
                    ),
                    spec=core.PodSpecArgs(
                        service_account_name="redis",
                        automount_service_account_token=False,
                        security_context=pod_security(spec.uid),
                        containers=[
                            core.ContainerArgs(
                                name="redis",
                                image=spec.image,
                                # $(VAR) is expanded by the kubelet: the manifest never holds the password.
                                args=[
                                    "--requirepass",
                                    "$(REDIS_PASSWORD)",
                                    "--maxmemory",
                                    f"{spec.max_memory_mb}mb",
                                    "--maxmemory-policy",
                                    "allkeys-lru",
                                    "--save",
                                    "",
                                    "--appendonly",
                                    "no",
                                ],
                                env=[
                                    core.EnvVarArgs(
                                        name="REDIS_PASSWORD",
                                        value_from=_secret_ref("redis-credentials", "REDIS_PASSWORD"),
                                    )
                                ],
                                ports=[core.ContainerPortArgs(name="redis", container_port=REDIS_PORT)],
                                readiness_probe=core.ProbeArgs(
                                    tcp_socket=core.TCPSocketActionArgs(port=REDIS_PORT), period_seconds=5
                                ),
                                liveness_probe=core.ProbeArgs(
                                    tcp_socket=core.TCPSocketActionArgs(port=REDIS_PORT), period_seconds=10
                                ),
                                resources=resources(
                                    spec.resources.cpu, spec.resources.memory, spec.resources.limit_memory
                                ),
                                security_context=container_security(spec.uid),
                                volume_mounts=[
                                    core.VolumeMountArgs(name="data", mount_path="/data"),
                                    tmp_mount,
                                ],
                            )
                        ],
                        volumes=[
                            core.VolumeArgs(name="data", empty_dir=core.EmptyDirVolumeSourceArgs()),
                            tmp,
                        ],
                    ),
                ),
            ),
            # Fixed name: a replace (a new selector: immutable) deletes first.
            opts=pulumi.ResourceOptions(
                parent=self, depends_on=[credentials, account], delete_before_replace=True
            ),
        )
        core.Service(
            "redis-service",
            metadata=metadata("redis", namespace, app_labels),
            spec=core.ServiceSpecArgs(
                selector=pod_selector,
                ports=[core.ServicePortArgs(name="redis", port=REDIS_PORT, target_port=REDIS_PORT)],
            ),
            opts=child,
        )
