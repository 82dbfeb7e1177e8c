"""From recorded registrations to redacted props, Kubernetes manifests and schema validation."""

from __future__ import annotations

import hashlib
import json
import re
from functools import cache
from pathlib import Path
from typing import Any

import jsonschema
import kubernetes_validate.utils as kv
import referencing
import yaml
from pulumi.runtime import rpc

REDACTED = "[secret]"
# Apply order for readable, stable file numbering (Helm's install order for the kinds used here).
KIND_ORDER = (
    "Namespace",
    "ResourceQuota",
    "LimitRange",
    "NetworkPolicy",
    "ServiceAccount",
    "Secret",
    "ConfigMap",
    "PersistentVolumeClaim",
    "Service",
    "StatefulSet",
    "Deployment",
    "Job",
    "HorizontalPodAutoscaler",
    "PodDisruptionBudget",
    "Ingress",
    "ServiceMonitor",
    "PrometheusRule",
)
# Custom resources: strict JSON schemas generated from a package of the CRDs' models (crd_schemas/generate.py).
CRD_SCHEMAS = Path(__file__).parent / "crd_schemas"
CRD_GROUPS = {"monitoring.coreos.com/v1": "monitoring-v1", "cert-manager.io/v1": "certmanager-v1"}


_Dumper = getattr(yaml, "CSafeDumper", yaml.SafeDumper)  # libyaml when present: same YAML, 5x faster


def dump_manifest(manifest: dict[str, Any]) -> str:
    """One object as YAML, keys sorted: the exact bytes of a manifest file."""
    return yaml.dump(manifest, Dumper=_Dumper, sort_keys=True, default_flow_style=False, width=120)


def clean(value: Any, path: str = "", secrets: list[str] | None = None) -> Any:
    """Redact secret values, turn the mock runtime's integral floats back into ints, drop engine-internal keys."""
    if rpc.is_rpc_secret(value):
        if secrets is not None:
            secrets.append(path or "/")
        return _redact(rpc.unwrap_rpc_secret(value))
    if isinstance(value, dict):
        return {
            k: clean(v, f"{path}/{k}", secrets)
            for k, v in sorted(value.items())
            if not str(k).startswith("__")
        }
    if isinstance(value, list):
        return [clean(v, f"{path}/{i}", secrets) for i, v in enumerate(value)]
    if isinstance(value, float) and value.is_integer():
        return int(value)
    return value


def secret_fingerprints(value: Any, path: str = "") -> dict[str, str]:
    """JSON pointer -> short hash of each secret input's value. Under the mock monitor those values come from
    placeholders (render.placeholder_secret), never from a real secret, so the hash tells only whether it changed."""
    if rpc.is_rpc_secret(value):
        raw = json.dumps(rpc.unwrap_rpc_secret(value), sort_keys=True, default=str)
        return {path or "/": hashlib.sha256(raw.encode()).hexdigest()[:16]}
    found: dict[str, str] = {}
    if isinstance(value, dict):
        for key, item in sorted(value.items()):
            if not str(key).startswith("__"):
                found |= secret_fingerprints(item, f"{path}/{key}")
    elif isinstance(value, list):
        for index, item in enumerate(value):
            found |= secret_fingerprints(item, f"{path}/{index}")
    return found


def _redact(value: Any) -> Any:
    """Keep the shape (key names are not secret), replace every leaf."""
    if isinstance(value, dict):
        return {k: _redact(v) for k, v in sorted(value.items())}
    if isinstance(value, list):
        return [_redact(v) for v in value]
    return REDACTED


# pulumi-kubernetes types that are no single Kubernetes object (a Helm release is a release in graph.json).
NOT_OBJECTS = ("kubernetes:helm.sh/", "kubernetes:yaml", "kubernetes:kustomize")


def is_kubernetes_object(resource_type: str) -> bool:
    return resource_type.startswith("kubernetes:") and not resource_type.startswith(NOT_OBJECTS)


def to_manifest(props: dict[str, Any]) -> dict[str, Any]:
    manifest = {k: v for k, v in props.items() if v is not None}
    if manifest.get("kind") == "Secret":
        # Secret payloads never leave the program, whatever their Output said.
        for key in ("data", "stringData"):
            if isinstance(manifest.get(key), dict):
                manifest[key] = {k: REDACTED for k in manifest[key]}
    return _drop_nulls(manifest)


def _drop_nulls(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _drop_nulls(v) for k, v in value.items() if v is not None}
    if isinstance(value, list):
        return [_drop_nulls(v) for v in value]
    return value


def sort_key(manifest: dict[str, Any]) -> tuple:
    kind = manifest["kind"]
    rank = KIND_ORDER.index(kind) if kind in KIND_ORDER else len(KIND_ORDER)
    meta = manifest.get("metadata", {})
    return rank, kind, meta.get("namespace", ""), meta.get("name", "")


def file_name(index: int, manifest: dict[str, Any]) -> str:
    name = re.sub(r"[^a-z0-9.-]+", "-", str(manifest["metadata"]["name"]).lower())
    return f"{index:03d}-{manifest['kind'].lower()}-{name}.yaml"


class ManifestInvalid(ValueError):
    pass


@cache
def _validator(version: str, kind: str, api_version: str) -> jsonschema.protocols.Validator:
    """kubernetes_validate's strict schema lookup, compiled once per (version, kind, apiVersion)."""
    if api_version in CRD_GROUPS:
        path = CRD_SCHEMAS / f"{kind.lower()}-{CRD_GROUPS[api_version]}.json"
        if not path.is_file():
            raise ManifestInvalid(
                f"no schema for {kind} {api_version} (custom resource; see {CRD_SCHEMAS.name}/)"
            )
        return jsonschema.validators.Draft202012Validator(json.loads(path.read_text()))
    schema_version = [v for v in kv.all_versions() if kv.major_minor(v) <= kv.major_minor(version)][-1]
    schema_dir = f"kubernetes-json-schema/v{schema_version}-local-strict"
    group = re.sub(r"^([^./]*)(?:\.[^/]*)?/", r"\1-", api_version)
    try:
        schema = kv.schema_contents(f"{schema_dir}/{kind.lower()}-{group}.json", version)
    except FileNotFoundError:
        raise ManifestInvalid(f"no schema for {kind} {api_version} in Kubernetes {version}") from None
    definitions = _definitions(schema_dir, version)
    registry = referencing.Resource.from_contents(schema) @ referencing.Registry()
    registry = definitions @ registry
    return jsonschema.validators.Draft202012Validator(schema, registry=registry)


@cache
def _definitions(schema_dir: str, version: str) -> referencing.Resource:
    return referencing.Resource.from_contents(kv.schema_contents(f"{schema_dir}/_definitions.json", version))


def validate(manifest: dict[str, Any], k8s_version: str) -> None:
    """Strict schema validation (unknown fields are errors) against the stack's Kubernetes version."""
    validator = _validator(k8s_version, manifest["kind"], manifest["apiVersion"])
    error = jsonschema.exceptions.best_match(validator.iter_errors(manifest))
    if error is not None:
        where = "/".join(str(p) for p in error.absolute_path) or "(root)"
        raise ManifestInvalid(
            f"{manifest['kind']}/{manifest['metadata'].get('name')}: {where}: {error.message} (Kubernetes {k8s_version}, strict)"
        )
