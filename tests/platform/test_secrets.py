"""Secrets stay secret Outputs end to end: from config, through the data components, to the Secrets' values."""

from __future__ import annotations

from urllib.parse import quote

from render_support import REPO_ROOT

from commerce_ops.render import stack_config_for
from commerce_ops.render.engine import run_program
from commerce_platform import catalogue
from commerce_platform.components.baseline import ClusterBaseline
from commerce_platform.components.datastores import PostgresDatabase, RedisCache
from commerce_platform.environments import PROJECT, load_environment
from commerce_platform.secrets import PlatformSecrets


def _run(env_name: str, program) -> tuple[dict, set[str], dict[str, str]]:
    config, secret_keys, _ = stack_config_for(env_name, REPO_ROOT, catalogue.SERVICES, None)
    run = run_program(program, project=PROJECT, stack=env_name, config=config, secret_keys=secret_keys)
    return run.outputs, run.secret_outputs, {k.partition(":")[2]: v for k, v in config.items()}


def test_in_cluster_connection_urls_are_secret_outputs_built_from_the_config_secrets():
    env = load_environment("dev", REPO_ROOT)

    def program():
        secrets = PlatformSecrets(env, catalogue.SERVICES)
        baseline = ClusterBaseline("baseline", env, catalogue.SERVICES)
        postgres = PostgresDatabase("postgres", env, baseline.namespace, catalogue.SERVICES, secrets)
        redis = RedisCache("redis", env, baseline.namespace, secrets)
        return {
            "namespace": baseline.namespace,
            "orders_database_url": postgres.database_urls["orders"],
            "redis_url": redis.url,
            "jwt_private_key": secrets.get("jwtPrivateKey"),
        }

    outputs, secret, config = _run("dev", program)
    assert secret == {"orders_database_url", "redis_url", "jwt_private_key"}
    assert outputs["namespace"] == "commerce-dev"
    host = "svc.cluster.local"
    assert outputs["orders_database_url"] == (
        f"postgresql://orders:{quote(config['ordersDbPassword'], safe='')}@postgres.commerce-dev.{host}:5432/orders"
    )
    assert (
        outputs["redis_url"]
        == f"redis://:{quote(config['redisPassword'], safe='')}@redis.commerce-dev.{host}:6379/0"
    )
    assert outputs["jwt_private_key"] == config["jwtPrivateKey"]


def test_external_urls_pass_through_as_secret_outputs():
    env = load_environment("prod", REPO_ROOT)

    def program():
        secrets = PlatformSecrets(env, catalogue.SERVICES)
        postgres = PostgresDatabase("postgres", env, "commerce-prod", catalogue.SERVICES, secrets)
        redis = RedisCache("redis", env, "commerce-prod", secrets)
        assert postgres.ready == []  # nothing to wait for: no in-cluster database, no init Job
        return {"users_database_url": postgres.database_urls["users"], "redis_url": redis.url}

    outputs, secret, config = _run("prod", program)
    assert secret == {"users_database_url", "redis_url"}
    assert outputs == {"users_database_url": config["usersDatabaseUrl"], "redis_url": config["redisUrl"]}
