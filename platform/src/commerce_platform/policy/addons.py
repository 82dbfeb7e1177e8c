"""Rules on what the workloads need from the cluster: the metrics API behind every HPA, pinned Helm releases."""

from __future__ import annotations

import re
from collections.abc import Iterator, Sequence

from commerce_platform import catalogue
from commerce_platform.policy.k8s import object_name
from commerce_platform.policy.model import Resource, Severity, resource_rule, stack_rule

Findings = Iterator[tuple[Resource, str]]
HELM_RELEASE_TYPES = frozenset({"kubernetes:helm.sh/v3:Release", "kubernetes:helm.sh/v4:Chart"})
METRICS_API_CHARTS = frozenset({"metrics-server"})  # charts that serve metrics.k8s.io
EXACT_VERSION = re.compile(r"^v?[0-9]+\.[0-9]+\.[0-9]+(-[0-9A-Za-z.-]+)?$")


def helm_releases(resources: Sequence[Resource]) -> list[Resource]:
    return [r for r in resources if r.type in HELM_RELEASE_TYPES]


def chart_name(release: Resource) -> str:
    return str(release.props.get("chart") or "").rsplit("/", 1)[-1]


@stack_rule(
    id="hpa-has-metrics-api",
    severity=Severity.HIGH,
    description="A HorizontalPodAutoscaler needs the metrics API: the stack installs metrics-server (Helm release), "
    f"or its Namespace says the cluster provides it (label {catalogue.METRICS_API_LABEL}=cluster).",
)
def hpa_has_metrics_api(resources: Sequence[Resource]) -> Findings:
    if any(chart_name(r) in METRICS_API_CHARTS for r in helm_releases(resources)):
        return
    provided = {
        object_name(ns)
        for ns in resources
        if ns.kind == "Namespace" and ns.labels.get(catalogue.METRICS_API_LABEL) == "cluster"
    }
    for hpa in resources:
        if hpa.kind == "HorizontalPodAutoscaler" and hpa.namespace not in provided:
            yield (
                hpa,
                "no metrics API: no metrics-server release in the stack and the cluster does not provide one",
            )


@resource_rule(
    id="helm-release-pinned",
    severity=Severity.HIGH,
    description="Every Helm release names its chart repository and an exact chart version (no range, no latest).",
)
def helm_release_pinned(resource: Resource) -> Iterator[str]:
    if resource.type not in HELM_RELEASE_TYPES:
        return
    version = str(resource.props.get("version") or "")
    if not EXACT_VERSION.match(version):
        yield f"chart {chart_name(resource)!r} has no exact version ({version or 'none'!r})"
    repo = (resource.props.get("repositoryOpts") or {}).get("repo") or resource.props.get("repo")
    if not repo and not str(resource.props.get("chart") or "").startswith("oci://"):
        yield f"chart {chart_name(resource)!r} names no repository"
