"""Names and labels shared by every component (recommended app.kubernetes.io labels on every object)."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping

import pulumi

from commerce_platform.components.kube import KubeObject, Manifest, fields, manifest

PART_OF = "commerce-platform"
MANAGED_BY = "pulumi"
TYPE_PREFIX = "commerce-platform"


def selector(name: str, instance: str, component: str) -> dict[str, str]:
    """The stable subset of labels used in selectors (never the version, which changes every release)."""
    return {
        "app.kubernetes.io/name": name,
        "app.kubernetes.io/instance": instance,
        "app.kubernetes.io/component": component,
    }


VERSION_LABEL = "app.kubernetes.io/version"


def labels(name: str, instance: str, component: str, app_version: str | None = None) -> dict[str, str]:
    """The recommended labels; the version only when given: it belongs where it means something (a pod
    template: what runs), so a promotion changes the pods, not every object's metadata."""
    return {
        **selector(name, instance, component),
        "app.kubernetes.io/part-of": PART_OF,
        "app.kubernetes.io/managed-by": MANAGED_BY,
        **({VERSION_LABEL: app_version} if app_version else {}),
    }


def metadata(
    name: str | None, namespace: pulumi.Input[str] | None, obj_labels: dict[str, str], **extra
) -> Manifest:
    return fields(name=name, namespace=namespace, labels=obj_labels, **extra)


# Pod template annotation: a digest of the secret material the pods read, so a changed credential rolls the
# Deployment (and replaces a Job) like a changed image does. Only the digest is written, never a value.
SECRET_CHECKSUM = "commerce-platform/secret-checksum"
# A Job that failed (or never completed) is replaced on the next `pulumi up` instead of being left failed.
JOB_ANNOTATIONS = {"pulumi.com/replaceUnready": "true"}


def secret_checksum(scope: str, values: Mapping[str, pulumi.Input[str]]) -> pulumi.Output[str]:
    """Digest of `values` (secret Outputs) salted with `scope`; a plain Output (the digest is no secret, and
    stays plain in previews and graph.json, so a changed secret shows as a changed checksum)."""

    def digest(resolved: dict[str, str]) -> str:
        material = json.dumps({"scope": scope, "values": resolved}, sort_keys=True)
        return hashlib.sha256(material.encode()).hexdigest()[:32]

    return pulumi.Output.unsecret(pulumi.Output.all(**dict(values)).apply(digest))


def version_label(image_ref: str) -> str:
    """A label-safe version from a pinned image (`…@sha256:<hex>` → `sha256-<12 hex>`), else `build`."""
    if "@sha256:" in image_ref:
        return "sha256-" + image_ref.rsplit("@sha256:", 1)[1][:12]
    return "build"


# Restricted Pod Security: the same container hardening for services, jobs and data stores.
def container_security(run_as_user: int) -> Manifest:
    return {
        "allowPrivilegeEscalation": False,
        "readOnlyRootFilesystem": True,
        "runAsNonRoot": True,
        "runAsUser": run_as_user,
        "runAsGroup": run_as_user,
        "capabilities": {"drop": ["ALL"]},
        "seccompProfile": {"type": "RuntimeDefault"},
    }


def pod_security(run_as_user: int) -> Manifest:
    return {
        "runAsNonRoot": True,
        "runAsUser": run_as_user,
        "runAsGroup": run_as_user,
        "fsGroup": run_as_user,
        "seccompProfile": {"type": "RuntimeDefault"},
    }


def resources(cpu: str, memory: str, memory_limit: str) -> Manifest:
    # No CPU limit on purpose: throttling hurts latency; memory is limited because OOM must stay local.
    return {"requests": {"cpu": cpu, "memory": memory}, "limits": {"memory": memory_limit}}


def tmp_volume() -> tuple[Manifest, Manifest]:
    """Read-only root filesystems still need a writable /tmp."""
    return {"name": "tmp", "emptyDir": {"sizeLimit": "64Mi"}}, {"name": "tmp", "mountPath": "/tmp"}


def secret_ref(secret: str, key: str) -> Manifest:
    return {"secretKeyRef": {"name": secret, "key": key}}


def match(pod_labels: dict[str, str]) -> Manifest:
    return {"matchLabels": pod_labels}


def container(
    name: str,
    image: pulumi.Input[str],
    *,
    uid: int,
    resources: Manifest,
    mounts: tuple[Manifest, ...] = (),
    **container_fields,
) -> Manifest:
    """A hardened container (restricted security context) with its mounts and a writable /tmp last."""
    _, tmp_mount = tmp_volume()
    return fields(
        name=name,
        image=image,
        resources=resources,
        securityContext=container_security(uid),
        volumeMounts=[*mounts, tmp_mount],
        **container_fields,
    )


def pod_template(
    pod_labels: dict[str, str],
    *,
    account: str,
    uid: int,
    containers: list[Manifest],
    volumes: tuple[Manifest, ...] = (),
    annotations: dict[str, pulumi.Input[str]] | None = None,
    **spec_fields,
) -> Manifest:
    """A restricted pod of its own service account (no API token), with the given volumes and /tmp last."""
    tmp, _ = tmp_volume()
    return {
        "metadata": fields(labels=pod_labels, annotations=annotations),
        "spec": fields(
            serviceAccountName=account,
            automountServiceAccountToken=False,
            securityContext=pod_security(uid),
            containers=containers,
            volumes=[*volumes, tmp],
            **spec_fields,
        ),
    }


def service_account(
    name: str, namespace: pulumi.Input[str], obj_labels: dict[str, str], opts: pulumi.ResourceOptions
) -> KubeObject:
    """An identity with no API token: no workload here talks to the Kubernetes API."""
    return KubeObject(
        f"{name}-serviceaccount",
        manifest(
            "v1", "ServiceAccount", metadata(name, namespace, obj_labels), automountServiceAccountToken=False
        ),
        opts,
    )
