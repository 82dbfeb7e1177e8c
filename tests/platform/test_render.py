"""The render output: byte-identical, schema-valid for the stack's Kubernetes version, and free of secrets."""

from __future__ import annotations

import functools
import json
import subprocess
import sys
from pathlib import Path

import kubernetes_validate
import pulumi._types as pulumi_types
import pytest
import yaml
from render_support import ENVIRONMENTS, REPO_ROOT, objects, rendered

from commerce_ops.local.secrets import rsa_key_pair
from commerce_ops.render import RenderError, engine, placeholder_secret, render_environment, write_render
from commerce_ops.render.manifests import CRD_GROUPS, REDACTED, dump_manifest, validate
from commerce_platform import catalogue
from commerce_platform.environments import load_environment
from commerce_platform.secrets import required_secrets

OPS = Path(sys.executable).parent / "ops"


def _files(directory: Path) -> dict[str, bytes]:
    return {
        str(p.relative_to(directory)): p.read_bytes() for p in sorted(directory.rglob("*")) if p.is_file()
    }


@pytest.mark.parametrize("env", ENVIRONMENTS)
def test_rerender_is_byte_identical(env, tmp_path):
    first = write_render(rendered(env), tmp_path / "a")
    second = write_render(render_environment(env, REPO_ROOT), tmp_path / "b")
    a, b = _files(first), _files(second)
    assert a == b
    assert "graph.json" in a and len(a) > 40
    names = [n for n in a if n.startswith("manifests/")]
    assert names == sorted(names) and names[0].endswith(
        "-namespace-" + rendered(env)["outputs"]["namespace"] + ".yaml"
    )
    for name in names:  # one object per file, keys sorted
        (doc,) = list(yaml.safe_load_all(a[name]))
        assert doc["kind"].lower() in name
        assert a[name].decode() == dump_manifest(doc)


def test_ops_render_in_another_process_writes_the_same_bytes(tmp_path):
    result = subprocess.run(
        [OPS, "render", "dev", "--out", tmp_path / "cli"], capture_output=True, text=True, cwd=tmp_path
    )
    assert result.returncode == 0, result.stderr
    assert "valid (kubernetes-validate strict, k8s 1.31)" in result.stdout
    assert _files(tmp_path / "cli") == _files(write_render(rendered("dev"), tmp_path / "in-process"))


def test_module_entry_point_renders_another_checkout(tmp_path):
    """What the diff tooling runs against a base-ref worktree: `python -m commerce_ops.render`."""
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "commerce_ops.render",
            "pr-7",
            "--out",
            tmp_path,
            "--repo-root",
            REPO_ROOT,
        ],
        capture_output=True,
        text=True,
    )
    assert result.returncode == 0, result.stderr
    graph = json.loads((tmp_path / "graph.json").read_text())
    assert graph["environment"] == "pr-7" and graph["outputs"]["namespace"] == "commerce-dev-pr-7"


@pytest.fixture(scope="module")
def schema_files_read_once():
    """kubernetes_validate reads and parses its schema files (the version's large _definitions.json too) on every
    call: here each file is read once for all of a run's calls. The validation itself is the library's, unchanged."""
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(
            kubernetes_validate.utils,
            "schema_contents",
            functools.cache(kubernetes_validate.utils.schema_contents),
        )
        yield


@pytest.mark.parametrize("env", ENVIRONMENTS)
def test_every_manifest_passes_kubernetes_validate_strict(env, schema_files_read_once):
    graph = rendered(env)
    assert graph["k8s_version"] == "1.31"
    for obj in objects(graph):
        if (
            obj["apiVersion"] in CRD_GROUPS
        ):  # custom resources: the committed strict schemas (render/crd_schemas)
            validate(obj, graph["k8s_version"])
        else:
            assert kubernetes_validate.validate(obj, graph["k8s_version"], strict=True) == "1.31"


def test_strict_validation_rejects_an_unknown_field():
    deployment = next(o for o in objects(rendered("dev"), "Deployment"))
    deployment["spec"]["template"]["spec"]["containers"][0]["livenessprobe"] = {}
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(deployment, "1.31", strict=True)


def _real_secrets() -> dict[str, str]:
    return {
        "jwtPrivateKey": rsa_key_pair()[0],
        "adminPassword": "Adm1n-pass-0f-the-test",
        "postgresPassword": "pg-super-s3cret-value",
        **{f"{s.name}DbPassword": f"{s.name}-db-s3cret-value" for s in catalogue.SERVICES},
        "redisPassword": "redis-s3cret-value",
        **{f"{s.name}ClientSecret": f"{s.name}-client-s3cret-value" for s in catalogue.SERVICES if s.calls},
        "kubeconfig": "apiVersion: v1\nkind: Config\nusers: [{name: x, user: {token: kube-t0ken-s3cret}}]\n",
    }


def test_no_secret_value_reaches_any_output_file(tmp_path):
    secrets = _real_secrets()
    graph = render_environment("dev", REPO_ROOT, stack_config=secrets)
    out = write_render(graph, tmp_path)
    texts = [p.read_text() for p in out.rglob("*") if p.is_file()]
    fragments = [v for v in secrets.values() if "\n" not in v] + [
        line for v in secrets.values() for line in v.splitlines() if len(line) > 20
    ]
    for text in texts:
        for fragment in fragments:
            assert fragment not in text
    assert any(REDACTED in t for t in texts)


@pytest.mark.parametrize("env", ENVIRONMENTS)
def test_placeholder_secrets_never_appear_and_secrets_are_secret_outputs(env, tmp_path):
    graph = rendered(env)
    text = json.dumps(graph)
    environment = load_environment(env, REPO_ROOT)
    for secret in required_secrets(environment, catalogue.SERVICES):
        assert placeholder_secret(env, secret.key) not in text
    by_urn = {r["urn"]: r for r in graph["resources"]}
    for resource in graph["resources"]:
        if resource["type"] == "kubernetes:core/v1:Secret":
            data = resource["props"]["stringData"]
            assert data and set(data.values()) == {REDACTED}
            # every value arrived at the engine as a secret Output, not a plain string
            assert all(
                any(p == f"/stringData/{k}" or p == "/stringData" for p in resource["secrets"]) for k in data
            )
    for obj in objects(graph, "Secret"):
        assert set(obj["stringData"].values()) == {REDACTED}
    assert by_urn  # the graph is not empty


def test_review_stack_validates_against_the_kubernetes_version_it_inherits_from_dev(repo_copy):
    stack_file = repo_copy / "Pulumi.dev.yaml"
    stack_file.write_text(stack_file.read_text().replace('k8sVersion: "1.31"', 'k8sVersion: "1.30"'))
    graph = render_environment("pr-5", repo_copy)
    assert graph["k8s_version"] == "1.30"
    (namespace,) = objects(graph, "Namespace")
    assert namespace["metadata"]["labels"]["pod-security.kubernetes.io/enforce-version"] == "v1.30"


def test_supported_versions_are_the_validators():
    """The program's literal list of Kubernetes versions is the one the installed kubernetes-validate ships."""
    from kubernetes_validate import utils

    from commerce_platform.environments import SUPPORTED_K8S_VERSIONS

    shipped = sorted(
        {utils.major_minor(v) for v in utils.all_versions()}, key=lambda v: tuple(map(int, v.split(".")))
    )
    assert list(SUPPORTED_K8S_VERSIONS) == shipped


def test_the_sdk_patches_hold_only_inside_a_render():
    original = pulumi_types._types_from_py_properties
    seen = []

    def program() -> dict:
        seen.append(pulumi_types._types_from_py_properties)
        return {}

    engine.run_program(program, project="p", stack="s", config={}, secret_keys=set())
    assert seen == [engine._cached_types_from_py_properties] and seen[0] is not original
    assert pulumi_types._types_from_py_properties is original


def test_an_unknown_pulumi_sdk_stops_the_render_in_one_line(monkeypatch):
    original = pulumi_types._types_from_py_properties
    monkeypatch.setattr(engine, "PULUMI_SDK_VERSION", "3.999.0")
    with pytest.raises(RenderError) as raised:
        render_environment("prod", REPO_ROOT)
    message = str(raised.value)
    assert "\n" not in message and "pulumi 3.223.0, not 3.999.0" in message and "SDK_VERSION" in message
    assert pulumi_types._types_from_py_properties is original
