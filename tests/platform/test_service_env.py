"""Env vars: the rendered Deployments set exactly what the settings read, from the one source (service_env)."""

from __future__ import annotations

import pytest
from render_support import ENVIRONMENTS, REPO_ROOT, by_name, rendered

from commerce_platform import catalogue
from commerce_platform.environments import load_environment
from commerce_platform.service_env import cluster_addresses, service_env


def _container_env(graph: dict, service: str) -> tuple[dict[str, str], set[str]]:
    """(plain name → value resolved from the ConfigMap, names taken from the Secret) of the service container."""
    config_maps = by_name(graph, "ConfigMap")
    container = by_name(graph, "Deployment")[service]["spec"]["template"]["spec"]["containers"][0]
    plain, secret = {}, set()
    for item in container["env"]:
        source = item["valueFrom"]
        if "configMapKeyRef" in source:
            ref = source["configMapKeyRef"]
            plain[item["name"]] = config_maps[ref["name"]]["data"][ref["key"]]
        else:
            assert source["secretKeyRef"]["name"] == f"{service}-secrets"
            secret.add(item["name"])
    return plain, secret


@pytest.mark.parametrize("env", ENVIRONMENTS)
@pytest.mark.parametrize("spec", catalogue.SERVICES, ids=lambda s: s.name)
def test_rendered_env_names_are_read_by_the_settings_and_cover_its_required_fields(env, spec):
    graph = rendered(env)
    plain, secret = _container_env(graph, spec.name)
    names = set(plain) | secret
    assert names <= spec.env_var_names, names - spec.env_var_names
    required = {n.upper() for n, f in spec.settings.model_fields.items() if f.is_required()}
    assert required <= names, required - names
    expected = service_env(
        load_environment(env, REPO_ROOT),
        spec.name,
        cluster_addresses(graph["outputs"]["namespace"], catalogue.SERVICES),
    )
    assert secret == expected.secret_names and not (secret & set(plain))
    assert plain == expected.plain
    secret_keys = set(by_name(graph, "Secret")[f"{spec.name}-secrets"]["stringData"])
    assert secret_keys == secret
    # the values parse: the settings class accepts exactly this environment
    placeholders = {k.lower(): "x" for k in secret}
    if "SERVICE_CLIENT_SECRETS" in secret:  # a JSON object of client → secret
        placeholders["service_client_secrets"] = '{"orders": "' + "x" * 16 + '"}'
    settings = spec.settings(**{k.lower(): v for k, v in plain.items()}, **placeholders)
    assert settings.service_name == spec.name and settings.environment == env


def test_local_runtime_gets_the_same_names_with_its_own_addresses():
    local = {s.name: f"http://127.0.0.1:{s.port}" for s in catalogue.SERVICES}
    dev = load_environment("dev", REPO_ROOT)
    envs = {s.name: service_env(dev, s.name, local) for s in catalogue.SERVICES}
    orders = envs["orders"].plain
    assert orders["USERS_URL"] == "http://127.0.0.1:8001"
    assert orders["PAYMENTS_URL"] == "http://127.0.0.1:8004"
    assert orders["JWT_JWKS_URL"] == "http://127.0.0.1:8001/.well-known/jwks.json"
    assert orders["ENVIRONMENT"] == "dev" and orders["SERVICE_NAME"] == "orders"
    users = envs["users"].plain
    assert "JWT_JWKS_URL" not in users and users["ADMIN_USERNAME"] == "admin"
    inventory = envs["inventory"].plain
    assert inventory["PRODUCT_CACHE_TTL_SECONDS"] == "30"  # the per-service override in environments/dev.yaml
    assert orders["SERVICE_TOKEN_URL"] == "http://127.0.0.1:8001/internal/token"
    assert "SERVICE_TOKEN_URL" not in inventory  # only callers get service tokens
    # Redis only where the settings require it: inventory's product cache, users' login throttle.
    assert envs["users"].secret_names == {
        "DATABASE_URL",
        "REDIS_URL",
        "JWT_PRIVATE_KEY",
        "ADMIN_PASSWORD",
        "SERVICE_CLIENT_SECRETS",
    }
    assert envs["orders"].secret_names == {"DATABASE_URL", "SERVICE_CLIENT_SECRET"}
    assert envs["inventory"].secret_names == {"DATABASE_URL", "REDIS_URL"}
