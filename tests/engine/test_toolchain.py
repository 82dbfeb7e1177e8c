"""The toolchain's pins agree with each other: versions.env, the tools modules' go.mod files, and uv.lock.

These need neither Go nor a build: they read the committed files.
"""

from __future__ import annotations

import re
import shutil
import tomllib
from pathlib import Path

import yaml
from engine_support import REPO

from commerce_ops.engine import cluster, toolchain

ENGINE = REPO / "platform" / "engine"


def requires(go_mod: Path) -> dict[str, str]:
    """module -> version from require lines (single and block form)."""
    found = {}
    for line in go_mod.read_text().splitlines():
        match = re.match(r"^\s*(?:require\s+)?([\w./~-]+)\s+(v\S+)(?:\s+//.*)?$", line)
        if match and "=>" not in line:
            found[match.group(1)] = match.group(2)
    return found


def replaces(go_mod: Path) -> dict[str, str]:
    found = {}
    for line in go_mod.read_text().splitlines():
        match = re.match(r"^\s*(?:replace\s+)?([\w./~-]+)\s+=>\s+([\w./~-]+)\s+(v\S+)\s*$", line)
        if match:
            found[match.group(1)] = f"{match.group(2)} {match.group(3)}"
    return found


def locked(package: str) -> str:
    lock = tomllib.loads((REPO / "uv.lock").read_text())
    return next(p["version"] for p in lock["package"] if p["name"] == package)


def test_pulumi_module_requires_the_pinned_versions():
    pins = toolchain.versions()
    mod = ENGINE / "tools" / "pulumi" / "go.mod"
    got = requires(mod)
    assert got["github.com/pulumi/pulumi/pkg/v3"] == pins["PULUMI_VERSION"]
    # pkg replaces sdk/v3 with ../sdk: as a dependency it needs the same version required
    assert got["github.com/pulumi/pulumi/sdk/v3"] == pins["PULUMI_VERSION"]
    assert (
        got["github.com/pulumi/pulumi-kubernetes/provider/v4"]
        == pins["PULUMI_KUBERNETES_PROVIDER_MODULE_VERSION"]
    )
    # the provider replaces its sdk/v4 with ../sdk: required at the provider's release
    assert got["github.com/pulumi/pulumi-kubernetes/sdk/v4"] == "v" + pins["PULUMI_KUBERNETES_VERSION"]
    assert replaces(mod)["github.com/atotto/clipboard"].startswith("github.com/tgummerer/clipboard ")
    assert re.fullmatch(r"v4\.0\.0-\d{14}-[0-9a-f]{12}", pins["PULUMI_KUBERNETES_PROVIDER_MODULE_VERSION"])


def test_kube_module_requires_the_pinned_versions_and_repeats_every_staging_replace():
    pins = toolchain.versions()
    mod = ENGINE / "tools" / "kube" / "go.mod"
    got = requires(mod)
    assert got["k8s.io/kubernetes"] == pins["KUBERNETES_VERSION"]
    assert got["go.etcd.io/etcd/server/v3"] == pins["ETCD_VERSION"]
    assert got["sigs.k8s.io/kwok"] == pins["KWOK_VERSION"]
    staging = pins["KUBERNETES_STAGING_VERSION"]
    assert staging == "v0." + pins["KUBERNETES_VERSION"].removeprefix("v1.")
    repeated = replaces(mod)
    assert len(repeated) >= 30
    for module, target in repeated.items():
        assert module.startswith("k8s.io/") and target == f"{module} {staging}", (module, target)
    # every staging module the build list holds is one of the replaced ones, at the staging version
    for module, version in got.items():
        if module in repeated:
            assert version == staging, (module, version)


def test_python_sdks_in_uv_lock_match_the_engine():
    pins = toolchain.versions()
    assert locked("pulumi") == pins["PULUMI_VERSION"].removeprefix("v")
    assert locked("pulumi-kubernetes") == pins["PULUMI_KUBERNETES_VERSION"]


def test_cache_key_follows_the_versions_file_and_the_go_sums(tmp_path):
    copy = tmp_path / "engine"
    shutil.copytree(ENGINE, copy)
    key = toolchain.cache_key(copy)
    assert key == toolchain.cache_key(copy)
    versions = copy / "versions.env"
    versions.write_text(versions.read_text().replace("KWOK_VERSION=", "KWOK_VERSION=v9", 1))
    assert toolchain.cache_key(copy) != key
    shutil.copy2(ENGINE / "versions.env", versions)
    assert toolchain.cache_key(copy) == key
    go_sum = copy / "tools" / "pulumi" / "go.sum"
    go_sum.write_text(go_sum.read_text() + "\n")
    assert toolchain.cache_key(copy) != key


def test_cache_folder_honours_ops_cache_dir_then_xdg(monkeypatch, tmp_path):
    monkeypatch.setenv("OPS_CACHE_DIR", str(tmp_path / "ops"))
    assert toolchain.Toolchain.current().home.parent == tmp_path / "ops" / "engine"
    monkeypatch.delenv("OPS_CACHE_DIR")
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert toolchain.Toolchain.current().home.parent == tmp_path / "xdg" / "commerce-platform" / "engine"


def test_local_cluster_context_is_the_one_the_dev_stack_names():
    config = yaml.safe_load((REPO / "Pulumi.dev.yaml").read_text())["config"]
    assert config["commerce-platform:kubeContext"] == cluster.CONTEXT
