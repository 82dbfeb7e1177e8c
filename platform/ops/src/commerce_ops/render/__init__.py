"""Offline render: the Pulumi program under the mock monitor → resource graph + one manifest per k8s object.

`render_environment(env)` returns `{"environment", "k8s_version", "outputs", "resources", "manifests"}`:
resources sorted by urn (urn, type, name, parent, dependencies, provider, props, secrets = paths of secret
inputs, options = the lifecycle options set: protect, retainOnDelete, deleteBeforeReplace, ignoreChanges,
customTimeouts), manifests sorted in apply order (`file`, `object`), every secret value replaced by "[secret]" and every
manifest validated strictly against the stack's Kubernetes version. `write_render` puts it on disk as
`manifests/NNN-<kind>-<name>.yaml` and `graph.json`; both are byte-identical across runs.

Config comes from Pulumi.<stack>.yaml exactly as the engine would pass it (pr-<N>: nothing, the program derives
it from dev). Encrypted secrets cannot be decrypted without the Pulumi CLI, so every secret the program requires
gets a deterministic placeholder — which never reaches the output, because secrets are redacted. A secret stored in
Pulumi.<stack>.yaml gets a placeholder derived from its ciphertext, and each resource lists a fingerprint of every
secret input (`secret_fingerprints`, pointer -> hash of the placeholder-derived value), so a changed secret value
shows in `ops diff` as a change of that field without its value ever being known here.
"""

from __future__ import annotations

import hashlib
import json
import shutil
from pathlib import Path
from typing import Any

from commerce_ops import paths
from commerce_ops.render.engine import SdkVersionError, run_program
from commerce_ops.render.manifests import (
    ManifestInvalid,
    clean,
    dump_manifest,
    file_name,
    is_kubernetes_object,
    secret_fingerprints,
    sort_key,
    to_manifest,
    validate,
)
from commerce_platform import catalogue
from commerce_platform.environments import (
    PROJECT,
    REVIEW_STACK,
    SECRET_STACK_KEYS,
    Environment,
    EnvironmentConfigError,
    declared_secrets,
    load_environment,
    stack_file_values,
)
from commerce_platform.secrets import MissingSecretError, required_secrets

__all__ = ["RenderError", "render_environment", "write_render", "placeholder_secret"]


class RenderError(ValueError):
    """One line saying what input is wrong and how to fix it."""


def placeholder_secret(stack: str, key: str, ciphertext: str = "") -> str:
    seed = f"{stack}/{key}" + (f"/{ciphertext}" if ciphertext else "")
    return f"render-placeholder-{hashlib.sha256(seed.encode()).hexdigest()[:24]}"


def stack_config_for(
    env: str,
    root: Path,
    services: tuple[catalogue.ServiceSpec, ...],
    overrides: dict[str, Any] | None,
) -> tuple[dict[str, str], set[str], Environment]:
    """The config map the engine would hand the program, which keys are secret, and the environment it yields."""
    required = load_environment(env, root, services=services)
    file_stack = None if REVIEW_STACK.match(env) else env
    plain = stack_file_values(file_stack, root) if file_stack else {}
    secret_keys = {s.key for s in required_secrets(required, services)} | set(SECRET_STACK_KEYS)
    ciphertexts = declared_secrets(file_stack, root) if file_stack else {}
    secret_keys |= set(ciphertexts)
    values: dict[str, Any] = {
        **plain,
        **{k: placeholder_secret(env, k, ciphertexts.get(k, "")) for k in secret_keys - SECRET_STACK_KEYS},
    }
    for key, value in (overrides or {}).items():
        if value is None:
            values.pop(key, None)
        else:
            values[key] = value
    environment = load_environment(
        env, root, {k: v for k, v in values.items() if k not in secret_keys}, services=services
    )
    config = {f"{PROJECT}:{k}": v if isinstance(v, str) else json.dumps(v) for k, v in values.items()}
    return config, {f"{PROJECT}:{k}" for k in secret_keys if k in values}, environment


def render_environment(
    env: str,
    repo_root: Path | None = None,
    stack_config: dict[str, Any] | None = None,
    *,
    services: tuple[catalogue.ServiceSpec, ...] = catalogue.SERVICES,
    check_schema: bool = True,
) -> dict[str, Any]:
    """Render stack `env` (dev, prod, pr-<N>) in memory. `stack_config` overrides Pulumi.<stack>.yaml values
    (keys without the project prefix; None removes a key, e.g. to prove a missing secret fails)."""
    from commerce_platform.program import PlatformConfigError, build

    root = Path(repo_root) if repo_root else paths.repo_root()
    try:
        config, secret_keys, environment = stack_config_for(env, root, services, stack_config)
        run = run_program(
            lambda: build(root, services), project=PROJECT, stack=env, config=config, secret_keys=secret_keys
        )
    except (EnvironmentConfigError, PlatformConfigError, MissingSecretError, SdkVersionError) as exc:
        raise RenderError(str(exc)) from None

    resources = []
    manifests = []
    for urn in sorted(run.resources):
        reg = run.resources[urn]
        secrets: list[str] = []
        props = clean(reg.inputs, "", secrets)
        resource = {
            "urn": reg.urn,
            "type": reg.type,
            "name": reg.name,
            "parent": reg.parent,
            "dependencies": reg.dependencies,
            "provider": reg.provider,
            "props": props,
            "secrets": secrets,
        }
        if reg.options:
            resource["options"] = reg.options
        if fingerprints := secret_fingerprints(reg.inputs):
            resource["secret_fingerprints"] = fingerprints
        resources.append(resource)
        if is_kubernetes_object(reg.type):
            manifests.append(to_manifest(props))
    k8s_version = environment.stack.k8s_version
    manifests.sort(key=sort_key)
    if check_schema:
        for manifest in manifests:
            try:
                validate(manifest, k8s_version)
            except ManifestInvalid as exc:
                raise RenderError(f"{env}: invalid manifest {exc}") from None
    outputs = {k: "[secret]" if k in run.secret_outputs else clean(v) for k, v in sorted(run.outputs.items())}
    return {
        "environment": env,
        "k8s_version": k8s_version,
        "outputs": outputs,
        "resources": resources,
        "manifests": [{"file": file_name(i, m), "object": m} for i, m in enumerate(manifests, start=1)],
    }


def write_render(graph: dict[str, Any], out_dir: Path) -> Path:
    """Write `manifests/` and `graph.json` under out_dir (replacing a previous render there)."""
    out_dir = Path(out_dir)
    manifest_dir = out_dir / "manifests"
    if manifest_dir.exists():
        shutil.rmtree(manifest_dir)
    manifest_dir.mkdir(parents=True)
    for entry in graph["manifests"]:
        (manifest_dir / entry["file"]).write_text(dump_manifest(entry["object"]))
    doc = {k: graph[k] for k in ("environment", "k8s_version", "outputs", "resources")}
    (out_dir / "graph.json").write_text(json.dumps(doc, indent=2, sort_keys=True) + "\n")
    return out_dir
