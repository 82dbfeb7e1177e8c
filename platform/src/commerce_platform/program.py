"""The Pulumi program: one environment, assembled from its components.

`build()` is what platform/__main__.py runs under the Pulumi engine, and what `ops render` runs under the mock
monitor; both paths read the same stack config and the same environments/ files.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pulumi
import pulumi_kubernetes as k8s

from commerce_platform import catalogue
from commerce_platform.components.addons import ClusterAddons
from commerce_platform.components.baseline import ClusterBaseline
from commerce_platform.components.datastores import PostgresDatabase, RedisCache
from commerce_platform.components.ingress import PublicIngress
from commerce_platform.components.meta import version_label
from commerce_platform.components.monitoring import Monitoring
from commerce_platform.components.service import ServiceDeployment
from commerce_platform.environments import (
    PROJECT,
    SECRET_STACK_KEYS,
    Environment,
    EnvironmentConfigError,
    StackSettings,
    load_environment,
)
from commerce_platform.images import service_image
from commerce_platform.secrets import PlatformSecrets
from commerce_platform.service_env import cluster_addresses, service_env


class PlatformConfigError(pulumi.RunError):
    """Bad environments/ or stack input; a RunError so the Pulumi CLI prints the one line, no traceback."""


def stack_values(config: pulumi.Config) -> dict[str, Any]:
    """The plain stack settings the engine was given (only those set, so pr-<N> can inherit dev's)."""
    values = {}
    for field in StackSettings.model_fields.values():
        key = field.alias
        if key in SECRET_STACK_KEYS:
            continue
        value = config.get(key)
        if value is not None:
            values[key] = value
    return values


def load(stack: str, repo_root: Path | None, services: tuple[catalogue.ServiceSpec, ...]) -> Environment:
    try:
        return load_environment(stack, repo_root, stack_values(pulumi.Config(PROJECT)), services)
    except EnvironmentConfigError as exc:
        raise PlatformConfigError(str(exc)) from None


def build(
    repo_root: Path | None = None, services: tuple[catalogue.ServiceSpec, ...] = catalogue.SERVICES
) -> dict[str, pulumi.Output[Any]]:
    """Declare the whole environment for the current stack and export its outputs."""
    env = load(pulumi.get_stack(), repo_root, services)
    secrets = PlatformSecrets(env, services)
    provider = k8s.Provider(
        "kubernetes",
        kubeconfig=secrets.kubeconfig,
        context=env.stack.kube_context,
        namespace=env.stack.namespace,
        enable_server_side_apply=True,
    )
    in_cluster = pulumi.ResourceOptions(providers=[provider])
    baseline = ClusterBaseline("baseline", env, services, opts=in_cluster)
    namespace = baseline.namespace
    addons = ClusterAddons("addons", env, namespace, opts=in_cluster)
    postgres = PostgresDatabase("postgres", env, namespace, services, secrets, opts=in_cluster)
    redis = RedisCache("redis", env, namespace, secrets, opts=in_cluster)

    deployments, images = _service_deployments(
        env, services, secrets, postgres, redis, namespace, repo_root, in_cluster
    )
    ingress = PublicIngress(
        "ingress", env, namespace, services, [*deployments, *addons.releases.values()], opts=in_cluster
    )
    if env.spec.monitoring.enabled:
        Monitoring("monitoring", env, namespace, services, deployments, opts=in_cluster)

    outputs: dict[str, pulumi.Output[Any]] = {
        "namespace": namespace,
        "public_url": ingress.url,
        "images": pulumi.Output.all(**images),
    }
    for key, value in outputs.items():
        pulumi.export(key, value)
    return outputs


def _service_deployments(
    env: Environment,
    services: tuple[catalogue.ServiceSpec, ...],
    secrets: PlatformSecrets,
    postgres: PostgresDatabase,
    redis: RedisCache,
    namespace: pulumi.Output[str],
    repo_root: Path | None,
    in_cluster: pulumi.ResourceOptions,
) -> tuple[list[pulumi.Resource], dict[str, pulumi.Output[str]]]:
    """One ServiceDeployment per service, with its plain env, its secret env and its image."""
    addresses = cluster_addresses(env.stack.namespace, services)
    deployments: list[pulumi.Resource] = []
    images: dict[str, pulumi.Output[str]] = {}
    client_secrets = secrets.client_secrets(services)
    for spec in services:
        release = env.spec.services[spec.name]
        secret_values = {
            "DATABASE_URL": postgres.database_urls.get(spec.name),
            "REDIS_URL": redis.url,
            "JWT_PRIVATE_KEY": secrets.get("jwtPrivateKey"),
            "ADMIN_PASSWORD": secrets.get("adminPassword"),
            "SERVICE_CLIENT_SECRET": client_secrets.get(spec.name),
            # The issuer's view of every caller's secret: one JSON object, secret like its parts.
            "SERVICE_CLIENT_SECRETS": pulumi.Output.secret(pulumi.Output.json_dumps(client_secrets)),
        }
        image, _ = service_image(env, spec, pulumi.ResourceOptions(), repo_root)
        variables = service_env(env, spec, addresses, services)
        deployment = ServiceDeployment(
            spec.name,
            spec=spec,
            release=release,
            environment=env.name,
            namespace=namespace,
            image=image,
            version=version_label(release.release),
            plain_env=variables.plain,
            secret_env={name: secret_values[name] for name in sorted(variables.secret_names)},
            needs=postgres.ready,
            opts=in_cluster,
        )
        deployments.append(deployment)
        images[spec.name] = image
    return deployments, images
