"""Postgres and Redis: in-cluster (StatefulSet / Deployment with password auth) or external by secret URL.

Either way each component hands the services secret connection URLs; services never learn which mode it is.
"""

from __future__ import annotations

from urllib.parse import quote

import pulumi

from commerce_platform import catalogue, dbinit
from commerce_platform.components.baseline import POSTGRES_CLIENT, POSTGRES_PORT
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
from commerce_platform.environments import Environment, Postgres, Redis
from commerce_platform.secrets import PlatformSecrets

REDIS_PORT = 6379


def _image_version(image: str) -> str:
    tag = image.split("@")[0].rsplit(":", 1)
    return tag[1] if len(tag) == 2 and "/" not in tag[1] else "latest"


def pg_isready(period: int, failures: int | None = None) -> Manifest:
    return fields(
        exec={"command": ["pg_isready", "-U", "postgres", "-h", "127.0.0.1"]},
        periodSeconds=period,
        failureThreshold=failures,
    )


def postgres_statefulset_spec(
    spec: Postgres, app_labels: dict[str, str], pod_selector: dict[str, str]
) -> Manifest:
    retention = "Retain" if spec.retain_volume else "Delete"
    server = container(
        "postgres",
        spec.image,
        uid=spec.uid,
        resources=resources(spec.resources.cpu, spec.resources.memory, spec.resources.limit_memory),
        mounts=(
            {"name": "data", "mountPath": "/var/lib/postgresql/data"},
            {"name": "run", "mountPath": "/var/run/postgresql"},
        ),
        ports=[{"name": "postgres", "containerPort": POSTGRES_PORT}],
        env=[
            {
                "name": "POSTGRES_PASSWORD",
                "valueFrom": secret_ref("postgres-credentials", "POSTGRES_PASSWORD"),
            },
            {"name": "PGDATA", "value": "/var/lib/postgresql/data/pgdata"},
        ],
        readinessProbe=pg_isready(5),
        livenessProbe=pg_isready(10, 6),
    )
    return {
        "serviceName": "postgres",
        "replicas": 1,
        "selector": match(pod_selector),
        "persistentVolumeClaimRetentionPolicy": {"whenDeleted": retention, "whenScaled": retention},
        "template": pod_template(
            app_labels,
            account="postgres",
            uid=spec.uid,
            containers=[server],
            volumes=({"name": "run", "emptyDir": {}},),
        ),
        "volumeClaimTemplates": [
            {
                "metadata": {"name": "data", "labels": app_labels},
                "spec": fields(
                    accessModes=["ReadWriteOnce"],
                    storageClassName=spec.storage_class,
                    resources={"requests": {"storage": spec.storage}},
                ),
            }
        ],
    }


def init_job_spec(
    spec: Postgres, host: pulumi.Input[str], clients: list[str], pod_labels: dict[str, str], checksum
) -> Manifest:
    """psql runs the idempotent init script (a database and login per client) as the superuser."""
    passwords = ["POSTGRES_PASSWORD", *(f"{db.upper()}_PASSWORD" for db in clients)]
    init = container(
        "init",
        spec.image,
        uid=spec.uid,
        resources=resources("50m", "64Mi", "128Mi"),
        mounts=({"name": "script", "mountPath": "/scripts", "readOnly": True},),
        command=["psql", "-v", "ON_ERROR_STOP=1", "-f", "/scripts/init.sql"],
        env=[
            {"name": "PGHOST", "value": host},
            {"name": "PGPORT", "value": str(POSTGRES_PORT)},
            {"name": "PGUSER", "value": "postgres"},
            {"name": "PGDATABASE", "value": "postgres"},
            *(
                {
                    "name": "PGPASSWORD" if key == "POSTGRES_PASSWORD" else key,
                    "valueFrom": secret_ref("postgres-credentials", key),
                }
                for key in passwords
            ),
        ],
    )
    return {
        "backoffLimit": 10,  # retries while Postgres is still starting
        "template": pod_template(
            pod_labels,
            # The init sets every login's password: a changed credential replaces (re-runs) the Job.
            annotations={SECRET_CHECKSUM: checksum},
            account="postgres",
            uid=spec.uid,
            restartPolicy="OnFailure",
            containers=[init],
            volumes=({"name": "script", "configMap": {"name": "postgres-init-script"}},),
        ),
    }


def redis_deployment_spec(
    spec: Redis, app_labels: dict[str, str], pod_selector: dict[str, str], checksum
) -> Manifest:
    server = container(
        "redis",
        spec.image,
        uid=spec.uid,
        resources=resources(spec.resources.cpu, spec.resources.memory, spec.resources.limit_memory),
        mounts=({"name": "data", "mountPath": "/data"},),
        # $(VAR) is expanded by the kubelet: the manifest never holds the password.
        args=["--requirepass", "$(REDIS_PASSWORD)", "--maxmemory", f"{spec.max_memory_mb}mb"]
        + ["--maxmemory-policy", "allkeys-lru", "--save", "", "--appendonly", "no"],
        env=[{"name": "REDIS_PASSWORD", "valueFrom": secret_ref("redis-credentials", "REDIS_PASSWORD")}],
        ports=[{"name": "redis", "containerPort": REDIS_PORT}],
        readinessProbe={"tcpSocket": {"port": REDIS_PORT}, "periodSeconds": 5},
        livenessProbe={"tcpSocket": {"port": REDIS_PORT}, "periodSeconds": 10},
    )
    return {
        "replicas": 1,
        "strategy": {"type": "Recreate"},
        "selector": match(pod_selector),
        "template": pod_template(
            app_labels,
            # A new password restarts Redis with it (the clients roll on the same checksum change).
            annotations={SECRET_CHECKSUM: checksum},
            account="redis",
            uid=spec.uid,
            containers=[server],
            volumes=({"name": "data", "emptyDir": {}},),
        ),
    }


def headless_service_spec(pod_selector: dict[str, str]) -> Manifest:
    return {
        "clusterIP": "None",  # headless: stable DNS for the StatefulSet pod
        "selector": pod_selector,
        "ports": [{"name": "postgres", "port": POSTGRES_PORT, "targetPort": POSTGRES_PORT}],
    }


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
        credentials = metadata("postgres-credentials", namespace, app_labels)
        secret = manifest("v1", "Secret", credentials, type="Opaque", stringData=credential_values)
        self.credentials = KubeObject("postgres-credentials", secret, child)
        self.account = service_account("postgres", namespace, app_labels, child)
        service = manifest(
            "v1",
            "Service",
            metadata("postgres", namespace, app_labels),
            spec=headless_service_spec(pod_selector),
        )
        self.service = KubeObject("postgres-service", service, child)
        self.statefulset = KubeObject(
            "postgres-statefulset",
            manifest(
                "apps/v1",
                "StatefulSet",
                metadata("postgres", namespace, app_labels),
                spec=postgres_statefulset_spec(spec, app_labels, pod_selector),
            ),
            # Fixed name: a replace (a new selector: immutable) deletes first, as for the Deployments; the data
            # stays in the PVC `data-postgres-0`, which the new StatefulSet mounts again. Retained data survives
            # `pulumi destroy` and any replace: protected (the Namespace too, baseline.py).
            pulumi.ResourceOptions(
                parent=self,
                depends_on=[self.credentials, self.service, self.account],
                delete_before_replace=True,
                protect=spec.retain_volume,
            ),
        )
        self._init(env, namespace, clients, host, credential_values)

    def _init(self, env, namespace, clients: list[str], host, credential_values) -> None:
        """The init script and the Job that runs it (a database and login per client, idempotent)."""
        spec, child = env.spec.postgres, pulumi.ResourceOptions(parent=self)
        init_labels = labels(
            "postgres-init", f"postgres-{env.name}", "database-init", _image_version(spec.image)
        )
        self.init_script = KubeObject(
            "postgres-init-script",
            manifest(
                "v1",
                "ConfigMap",
                metadata("postgres-init-script", namespace, init_labels),
                data={"init.sql": dbinit.psql_script(clients)},
            ),
            child,
        )
        checksum = secret_checksum(f"postgres-{env.name}/init", credential_values)
        init_pods = {**init_labels, POSTGRES_CLIENT: "true"}
        self.init_job = KubeObject(
            "postgres-init-job",
            manifest(
                "batch/v1",
                "Job",
                metadata("postgres-init", namespace, init_labels, annotations=JOB_ANNOTATIONS),
                spec=init_job_spec(spec, host, clients, init_pods, checksum),
            ),
            # A Job's pod template is immutable: a changed script replaces the Job (same name → delete first).
            pulumi.ResourceOptions(
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
        self.credentials = KubeObject(
            "redis-credentials",
            manifest(
                "v1",
                "Secret",
                metadata("redis-credentials", namespace, app_labels),
                type="Opaque",
                stringData={"REDIS_PASSWORD": password},
            ),
            child,
        )
        self.account = service_account("redis", namespace, app_labels, child)
        checksum = secret_checksum(f"redis-{env.name}", {"REDIS_PASSWORD": password})
        self.deployment = KubeObject(
            "redis-deployment",
            manifest(
                "apps/v1",
                "Deployment",
                metadata("redis", namespace, app_labels),
                spec=redis_deployment_spec(spec, app_labels, pod_selector, checksum),
            ),
            # Fixed name: a replace (a new selector: immutable) deletes first.
            pulumi.ResourceOptions(
                parent=self, depends_on=[self.credentials, self.account], delete_before_replace=True
            ),
        )
        self.service = KubeObject(
            "redis-service",
            manifest(
                "v1",
                "Service",
                metadata("redis", namespace, app_labels),
                spec={
                    "selector": pod_selector,
                    "ports": [{"name": "redis", "port": REDIS_PORT, "targetPort": REDIS_PORT}],
                },
            ),
            child,
        )
