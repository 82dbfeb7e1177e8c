"""Bad input fails with one line naming the file, the key and the fix — never a traceback."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from commerce_ops.render import RenderError, render_environment

OPS = Path(sys.executable).parent / "ops"


def _edit(path: Path, change) -> None:
    data = yaml.safe_load(path.read_text())
    change(data)
    path.write_text(yaml.safe_dump(data, sort_keys=False))


def _error(env: str, root: Path, **kwargs) -> str:
    with pytest.raises(RenderError) as caught:
        render_environment(env, root, **kwargs)
    message = str(caught.value)
    assert "\n" not in message
    return message


def test_prod_without_a_secret_names_the_command_to_run(repo_copy):
    message = _error("prod", repo_copy, stack_config={"jwtPrivateKey": None})
    assert message == (
        "stack 'prod' is missing the secret 'jwtPrivateKey' (RS256 private key (PEM) the token issuer signs with); "
        "run: pulumi config set --secret jwtPrivateKey --stack prod <value>"
    )


def test_external_database_url_is_required_per_service(repo_copy):
    message = _error("prod", repo_copy, stack_config={"ordersDatabaseUrl": None})
    assert "pulumi config set --secret ordersDatabaseUrl" in message


@pytest.mark.parametrize(
    ("file", "change", "expected"),
    [
        (
            "environments/dev.yaml",
            lambda d: d.update(replicas=3),
            "environments/dev.yaml: unknown key 'replicas'; allowed keys: addons, description, image_repository, log_level, monitoring, postgres, quota, redis, services, settings",
        ),
        (
            "environments/dev.yaml",
            lambda d: d["postgres"].update(mode="cloud"),
            "environments/dev.yaml: postgres.mode: Input should be 'in-cluster' or 'external'",
        ),
        (
            "environments/dev.yaml",
            lambda d: d["services"]["users"]["autoscaling"].update(min=5),
            "environments/dev.yaml: services.users.autoscaling: min (5) must be <= max (3)",
        ),
        (
            "environments/dev.yaml",
            lambda d: d["services"]["users"].update(sizing=1),
            "environments/dev.yaml: unknown key 'services.users.sizing'; allowed keys: autoscaling, release, resources, settings",
        ),
        (
            "environments/dev.yaml",
            lambda d: d["services"]["users"]["resources"].update(cpu="lots"),
            "environments/dev.yaml: services.users.resources.cpu: 'lots' is not a quantity: write it as a "
            "string, e.g. '250m' (millicores) or '1' (cores)",
        ),
        (
            "environments/dev.yaml",
            lambda d: d["services"]["users"]["resources"].update(memory=256),
            "environments/dev.yaml: services.users.resources.memory: 256 is not a quantity: write it as a "
            "string with a unit, e.g. '256Mi' (Ki, Mi, Gi, Ti)",
        ),
        (
            "environments/dev.yaml",
            lambda d: d["quota"].update(memory="8 GB"),
            "environments/dev.yaml: quota.memory: '8 GB' is not a quantity: write it as a string with a unit, "
            "e.g. '8Gi'",
        ),
        (
            "environments/dev.yaml",
            lambda d: d["services"]["users"].update(autoscalng=d["services"]["users"].pop("autoscaling")),
            "environments/dev.yaml: unknown key 'services.users.autoscalng' (did you mean 'autoscaling'?); "
            "allowed keys: autoscaling, release, resources, settings",
        ),
        (
            "environments/dev.yaml",
            lambda d: d["services"].update(oders=d["services"].pop("orders")),
            "environments/dev.yaml: services.oders: unknown service (did you mean 'orders'?); allowed: users,",
        ),
        (
            "environments/prod.yaml",
            lambda d: d["monitoring"].update(traces="otlp"),
            "environments/prod.yaml: monitoring: traces: otlp needs otlp_endpoint (the collector's OTLP/HTTP URL)",
        ),
        (
            "environments/prod.yaml",
            lambda d: d["monitoring"].update(scrape="30s"),
            "environments/prod.yaml: unknown key 'monitoring.scrape'; allowed keys: enabled, labels, namespace, otlp_endpoint, scrape_interval, traces",
        ),
        (
            "environments/dev.yaml",
            lambda d: d["services"].update(search={}),
            "environments/dev.yaml: services.search: unknown service; allowed: users, inventory, orders, payments",
        ),
        (
            "environments/dev.yaml",
            lambda d: d["services"].pop("payments"),
            "environments/dev.yaml: services: missing required key 'payments'",
        ),
        (
            "environments/dev.yaml",
            lambda d: d["settings"].update(DATABASE_URL="postgresql://x"),
            "environments/dev.yaml: settings.DATABASE_URL: not a non-secret setting the service reads; allowed:",
        ),
        (
            "environments/prod.yaml",
            lambda d: d["services"]["orders"].update(release="ghcr.io/commerce-platform/orders:1.4"),
            "environments/prod.yaml: services.orders.release: must be 'build' or a pinned digest 'repo@sha256:<64 hex>', got 'ghcr.io/commerce-platform/orders:1.4'",
        ),
        (
            "environments/prod.yaml",
            lambda d: d["services"]["orders"].update(release="build"),
            "environments/prod.yaml: services.orders.release: prod accepts pinned digests only",
        ),
        (
            "Pulumi.prod.yaml",
            lambda d: d["config"].update({"commerce-platform:k8sVersion": "1.12"}),
            "Pulumi.prod.yaml: commerce-platform:k8sVersion: unsupported version '1.12'; allowed: ",
        ),
        (
            "Pulumi.dev.yaml",
            lambda d: d["config"].pop("commerce-platform:kubeContext"),
            "Pulumi.dev.yaml: missing required key 'commerce-platform:kubeContext'",
        ),
        (
            "Pulumi.dev.yaml",
            lambda d: d["config"].update({"commerce-platform:nameSpace": "x"}),
            "Pulumi.dev.yaml: unknown key 'commerce-platform:nameSpace' (did you mean 'namespace'?); "
            "allowed keys: adminUsername, domain,",
        ),
    ],
)
def test_bad_input_is_one_line_naming_file_key_and_allowed_values(repo_copy, file, change, expected):
    _edit(repo_copy / file, change)
    env = "prod" if "prod" in file else "dev"
    assert _error(env, repo_copy).startswith(expected)


def test_review_stacks_inherit_dev_errors(repo_copy):
    _edit(repo_copy / "environments/dev.yaml", lambda d: d["redis"].update(mode="sidecar"))
    assert _error("pr-9", repo_copy).startswith("environments/dev.yaml: redis.mode: Input should be")


def test_broken_yaml_names_the_line(repo_copy):
    (repo_copy / "environments/dev.yaml").write_text("services: [\n  users: {\n")
    assert _error("dev", repo_copy).startswith("environments/dev.yaml: not valid YAML (line ")


def test_ops_render_exits_non_zero_with_one_line_and_no_traceback():
    result = subprocess.run([OPS, "render", "staging"], capture_output=True, text=True)
    assert result.returncode == 1
    assert result.stderr.strip().splitlines() == [
        "error: unknown environment 'staging'; allowed: dev, prod, pr-<N> (an environment is a name with both "
        "environments/<name>.yaml and Pulumi.<name>.yaml, or pr-<N> (a review stack derived from dev))"
    ]
    assert "Traceback" not in result.stdout + result.stderr


@pytest.mark.parametrize("present", ["environments/staging.yaml", "Pulumi.staging.yaml"])
def test_half_an_environment_names_the_missing_file(repo_copy, present):
    """One rule for every command: an environment needs both files; with one, the message names the other."""
    source = "environments/dev.yaml" if present.startswith("environments") else "Pulumi.dev.yaml"
    (repo_copy / present).write_text((repo_copy / source).read_text())
    missing = "Pulumi.staging.yaml" if present.startswith("environments") else "environments/staging.yaml"
    assert _error("staging", repo_copy).startswith(
        f"{missing}: file not found; {present} alone does not make 'staging' an environment: add {missing}"
    )


def test_both_files_make_an_environment(repo_copy):
    (repo_copy / "environments/staging.yaml").write_text((repo_copy / "environments/dev.yaml").read_text())
    stack = (repo_copy / "Pulumi.dev.yaml").read_text().replace("commerce-dev", "commerce-staging")
    (repo_copy / "Pulumi.staging.yaml").write_text(stack)
    graph = render_environment("staging", repo_copy)
    assert graph["environment"] == "staging"
    assert graph["outputs"]["namespace"] == "commerce-staging"


@pytest.mark.parametrize(
    "edit, message",
    [
        (
            lambda d: d["settings"].update(DB_POOL_MAX_SIZE="five"),
            "environments/dev.yaml: settings.DB_POOL_MAX_SIZE: 'five' is not valid for users "
            "(UsersSettings.db_pool_max_size: int): Input should be a valid integer, unable to parse string as an "
            "integer; fix: set it to a valid int",
        ),
        (
            lambda d: d["services"]["inventory"]["settings"].update(PRODUCT_CACHE_ENABLED="maybe"),
            "environments/dev.yaml: services.inventory.settings.PRODUCT_CACHE_ENABLED: 'maybe' is not valid for "
            "inventory (InventorySettings.product_cache_enabled: bool)",
        ),
    ],
)
def test_settings_values_are_checked_against_the_settings_class_at_render_time(repo_copy, edit, message):
    _edit(repo_copy / "environments/dev.yaml", edit)
    for env in ("dev", "pr-7"):
        error = _error(env, repo_copy)
        assert error.startswith(message) and "\n" not in error


def test_a_memory_target_is_a_share_of_the_limit(repo_copy):
    from commerce_platform.components.service import memory_share

    _edit(
        repo_copy / "environments/dev.yaml",
        lambda d: d["services"]["users"]["autoscaling"].update(memory_percent=85),
    )
    graph = render_environment("dev", repo_copy, check_schema=False)
    [hpa] = [
        m["object"]
        for m in graph["manifests"]
        if m["object"]["kind"] == "HorizontalPodAutoscaler" and m["object"]["metadata"]["name"] == "users"
    ]
    memory = next(m for m in hpa["spec"]["metrics"] if m["resource"]["name"] == "memory")
    assert memory["resource"]["target"] == {"type": "AverageValue", "averageValue": "217Mi"}  # 85% of 256Mi
    assert memory_share("512Mi", 85) == "435Mi" and memory_share("1Gi", 50) == "512Mi"


def test_external_stores_need_their_networks(repo_copy):
    _edit(repo_copy / "environments/prod.yaml", lambda d: d["redis"].pop("cidrs"))
    assert _error("prod", repo_copy).startswith(
        "environments/prod.yaml: redis: external mode needs cidrs: the managed store's networks"
    )
    _edit(repo_copy / "environments/prod.yaml", lambda d: d["redis"].update(cidrs=["0.0.0.0/0"]))
    assert "0.0.0.0/0 is everywhere" in _error("prod", repo_copy)
