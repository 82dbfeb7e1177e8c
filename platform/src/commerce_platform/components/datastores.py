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
from commerce_platform.environments import Environment, Postgres, Redis
from commerce_platform.secrets import PlatformSecrets

core = k8s.core.v1
REDIS_PORT = 6379


def _image_version(image: str) -> str:
    tag = image.split("@")[0].rsplit(":", 1)
    return tag[1] if len(tag) == 2 and "/" not in tag[1] else "latest"


def pg_isready(period: int, failures: int | None = None) -> core.ProbeArgs:
    return core.ProbeArgs(
        exec_=core.ExecActionArgs(command=["pg_isready", "-U", "postgres", "-h", "127.0.0.1"]),
        period_seconds=period,
        failure_threshold=failures,
    )


def postgres_statefulset_spec(
    spec: Postgres, app_labels: dict[str, str], pod_selector: dict[str, str]
) -> k8s.apps.v1.StatefulSetSpecArgs:
    retention = "Retain" if spec.retain_volume else "Delete"
    server = container(
        "postgres",
        spec.image,
        uid=spec.uid,
        resources=resources(spec.resources.cpu, spec.resources.memory, spec.resources.limit_memory),
        mounts=(
            core.VolumeMountArgs(name="data", mount_path="/var/lib/postgresql/data"),
            core.VolumeMountArgs(name="run", mount_path="/var/run/postgresql"),
        ),
        ports=[core.ContainerPortArgs(name="postgres", container_port=POSTGRES_PORT)],
        env=[
            core.EnvVarArgs(
                name="POSTGRES_PASSWORD", value_from=secret_ref("postgres-credentials", "POSTGRES_PASSWORD")
            ),
            core.EnvVarArgs(name="PGDATA", value="/var/lib/postgresql/data/pgdata"),
        ],
        readiness_probe=pg_isready(5),
        liveness_probe=pg_isready(10, 6),
    )
    return k8s.apps.v1.StatefulSetSpecArgs(
        service_name="postgres",
        replicas=1,
        selector=match(pod_selector),
        persistent_volume_claim_retention_policy=k8s.apps.v1.StatefulSetPersistentVolumeClaimRetentionPolicyArgs(
            when_deleted=retention, when_scaled=retention
        ),
        template=pod_template(
            app_labels,
            account="postgres",
            uid=spec.uid,
            containers=[server],
            volumes=(core.VolumeArgs(name="run", empty_dir=core.EmptyDirVolumeSourceArgs()),),
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
    )


def init_job_spec(
    spec: Postgres, host: pulumi.Input[str], clients: list[str], pod_labels: dict[str, str], checksum
) -> k8s.batch.v1.JobSpecArgs:
    """psql runs the idempotent init script (a database and login per client) as the superuser."""
    passwords = ["POSTGRES_PASSWORD", *(f"{db.upper()}_PASSWORD" for db in clients)]
    init = container(
        "init",
        spec.image,
        uid=spec.uid,
        resources=resources("50m", "64Mi", "128Mi"),
        mounts=(core.VolumeMountArgs(name="script", mount_path="/scripts", read_only=True),),
        command=["psql", "-v", "ON_ERROR_STOP=1", "-f", "/scripts/init.sql"],
        env=[
            core.EnvVarArgs(name="PGHOST", value=host),
            core.EnvVarArgs(name="PGPORT", value=str(POSTGRES_PORT)),
            core.EnvVarArgs(name="PGUSER", value="postgres"),
            core.EnvVarArgs(name="PGDATABASE", value="postgres"),
            *(
                core.EnvVarArgs(
                    name="PGPASSWORD" if key == "POSTGRES_PASSWORD" else key,
                    value_from=secret_ref("postgres-credentials", key),
                )
                for key in passwords
            ),
        ],
    )
    return k8s.batch.v1.JobSpecArgs(
        backoff_limit=10,  # retries while Postgres is still starting
        template=pod_template(
            pod_labels,
            # The init sets every login's password: a changed credential replaces (re-runs) the Job.
            annotations={SECRET_CHECKSUM: checksum},
            account="postgres",
            uid=spec.uid,
            restart_policy="OnFailure",
            containers=[init],
            volumes=(
                core.VolumeArgs(
                    name="script", config_map=core.ConfigMapVolumeSourceArgs(name="postgres-init-script")
                ),
            ),
        ),
    )


def redis_deployment_spec(
    spec: Redis, app_labels: dict[str, str], pod_selector: dict[str, str], checksum
) -> k8s.apps.v1.DeploymentSpecArgs:
    server = container(
        "redis",
        spec.image,
        uid=spec.uid,
        resources=resources(spec.resources.cpu, spec.resources.memory, spec.resources.limit_memory),
        mounts=(core.VolumeMountArgs(name="data", mount_path="/data"),),
        # $(VAR) is expanded by the kubelet: the manifest never holds the password.
        args=["--requirepass", "$(REDIS_PASSWORD)", "--maxmemory", f"{spec.max_memory_mb}mb"]
        + ["--maxmemory-policy", "allkeys-lru", "--save", "", "--appendonly", "no"],
        env=[
            core.EnvVarArgs(
                name="REDIS_PASSWORD", value_from=secret_ref("redis-credentials", "REDIS_PASSWORD")
            )
        ],
        ports=[core.ContainerPortArgs(name="redis", container_port=REDIS_PORT)],
        readiness_probe=core.ProbeArgs(
            tcp_socket=core.TCPSocketActionArgs(port=REDIS_PORT), period_seconds=5
        ),
        liveness_probe=core.ProbeArgs(
            tcp_socket=core.TCPSocketActionArgs(port=REDIS_PORT), period_seconds=10
        ),
    )
    return k8s.apps.v1.DeploymentSpecArgs(
        replicas=1,
        strategy=k8s.apps.v1.DeploymentStrategyArgs(type="Recreate"),
        selector=match(pod_selector),
        template=pod_template(
            app_labels,
            # A new password restarts Redis with it (the clients roll on the same checksum change).
            annotations={SECRET_CHECKSUM: checksum},
            account="redis",
            uid=spec.uid,
            containers=[server],
            volumes=(core.VolumeArgs(name="data", empty_dir=core.EmptyDirVolumeSourceArgs()),),
        ),
    )


def headless_service_spec(pod_selector: dict[str, str]) -> core.ServiceSpecArgs:
    return core.ServiceSpecArgs(
        cluster_ip="None",  # headless: stable DNS for the StatefulSet pod
        selector=pod_selector,
        ports=[core.ServicePortArgs(name="postgres", port=POSTGRES_PORT, target_port=POSTGRES_PORT)],
    )


class PostgresDatabase(pulumi.ComponentResource):
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
        self.credentials = core.Secret(
            "postgres-credentials",
            metadata=metadata("postgres-credentials", namespace, app_labels),
            type="Opaque",
            string_data=credential_values,
            opts=child,
        )
        self.account = service_account("postgres", namespace, app_labels, child)
        self.service = core.Service(
            "postgres-service",
            metadata=metadata("postgres", namespace, app_labels),
            spec=headless_service_spec(pod_selector),
            opts=child,
        )
        self.statefulset = k8s.apps.v1.StatefulSet(
            "postgres-statefulset",
            metadata=metadata("postgres", namespace, app_labels),
            spec=postgres_statefulset_spec(spec, app_labels, pod_selector),
            # Fixed name: a replace (a new selector: immutable) deletes first, as for the Deployments; the data
            # stays in the PVC `data-postgres-0`, which the new StatefulSet mounts again. Retained data survives
            # `pulumi destroy` and any replace: protected (the Namespace too, baseline.py).
            opts=pulumi.ResourceOptions(
                parent=self,
                depends_on=[self.credentials, self.service, self.account],
                delete_before_replace=True,
                protect=spec.retain_volume,
            ),
        )
        init_labels = labels(
            "postgres-init", f"postgres-{env.name}", "database-init", _image_version(spec.image)
        )
        self.init_script = core.ConfigMap(
            "postgres-init-script",
            metadata=metadata("postgres-init-script", namespace, init_labels),
            data={"init.sql": dbinit.psql_script(clients)},
            opts=child,
        )
        checksum = secret_checksum(f"postgres-{env.name}/init", credential_values)
        self.init_job = k8s.batch.v1.Job(
            "postgres-init-job",
            metadata=metadata("postgres-init", namespace, init_labels, annotations=JOB_ANNOTATIONS),
            spec=init_job_spec(spec, host, clients, {**init_labels, POSTGRES_CLIENT: "true"}, checksum),
            # A Job's pod template is immutable: a changed script replaces the Job (same name → delete first).
            opts=pulumi.ResourceOptions(
                parent=self,
                depends_on=[self.statefulset, self.init_script, self.credentials, self.account],
                delete_before_replace=True,
            ),
        )
        self.ready = [self.init_job]


class RedisCache(pulumi.ComponentResource):
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
        self.credentials = core.Secret(
            "redis-credentials",
            metadata=metadata("redis-credentials", namespace, app_labels),
            type="Opaque",
            string_data={"REDIS_PASSWORD": password},
            opts=child,
        )
        self.account = service_account("redis", namespace, app_labels, child)
        checksum = secret_checksum(f"redis-{env.name}", {"REDIS_PASSWORD": password})
        self.deployment = k8s.apps.v1.Deployment(
            "redis-deployment",
            metadata=metadata("redis", namespace, app_labels),
            spec=redis_deployment_spec(spec, app_labels, pod_selector, checksum),
            # Fixed name: a replace (a new selector: immutable) deletes first.
            opts=pulumi.ResourceOptions(
                parent=self, depends_on=[self.credentials, self.account], delete_before_replace=True
            ),
        )
        self.service = core.Service(
            "redis-service",
            metadata=metadata("redis", namespace, app_labels),
            spec=core.ServiceSpecArgs(
                selector=pod_selector,
                ports=[core.ServicePortArgs(name="redis", port=REDIS_PORT, target_port=REDIS_PORT)],
            ),
            opts=child,
        )
