"""Monitoring: what the Prometheus Operator and Grafana need to watch the services.

A ServiceMonitor per service (its Service's `metrics` port, never the API port), one PrometheusRule with the
SLO alerts, and the Grafana dashboard as a ConfigMap for Grafana's sidecar loader (label `grafana_dashboard`).
The NetworkPolicy edge from the monitoring namespace to the metrics ports is the ClusterBaseline's, with the
other network rules. Declared only when `monitoring.enabled` in environments/<env>.yaml.
"""

from __future__ import annotations

import json

import pulumi

from commerce_platform import catalogue
from commerce_platform.components.kube import KubeObject, Manifest, manifest
from commerce_platform.components.meta import TYPE_PREFIX, labels, metadata, selector
from commerce_platform.environments import Environment

MONITORING_API = "monitoring.coreos.com/v1"
DASHBOARD_LABEL = "grafana_dashboard"  # what the Grafana chart's dashboard sidecar looks for
DASHBOARD_FILE = "commerce-platform.json"
REQUESTS = "http_server_request_duration_seconds"
# Alert thresholds (the SLOs): 5xx over 5% of requests, p99 over 1 s, over 10% of sagas not completed.
ERROR_RATIO = 0.05
P99_SECONDS = 1.0
SAGA_FAILURE_RATIO = 0.10
PROBES = '"/health|/ready"'


def alert_rules(namespace: str) -> list[dict]:
    ns = f'namespace="{namespace}"'
    api = f"{ns}, route!~{PROBES}"
    return [
        {
            "alert": "CommerceHighErrorRatio",
            "expr": f'sum by (job) (rate({REQUESTS}_count{{{api}, status=~"5.."}}[5m]))'
            f" / sum by (job) (rate({REQUESTS}_count{{{api}}}[5m])) > {ERROR_RATIO}",
            "for": "10m",
            "labels": {"severity": "critical"},
            "annotations": {
                "summary": "{{ $labels.job }}: more than 5% of requests fail with 5xx",
                "description": "5xx ratio {{ $value | humanizePercentage }} over 5 minutes.",
            },
        },
        {
            "alert": "CommerceHighLatencyP99",
            "expr": f"histogram_quantile(0.99, sum by (job, le) (rate({REQUESTS}_bucket{{{api}}}[5m])))"
            f" > {P99_SECONDS}",
            "for": "10m",
            "labels": {"severity": "warning"},
            "annotations": {
                "summary": "{{ $labels.job }}: p99 latency above 1s",
                "description": "p99 {{ $value | humanizeDuration }} over 5 minutes.",
            },
        },
        {
            "alert": "CommerceOrderSagaFailureRatio",
            "expr": f'sum(rate(orders_saga_outcomes_total{{{ns}, outcome!="completed"}}[15m]))'
            f" / sum(rate(orders_saga_outcomes_total{{{ns}}}[15m])) > {SAGA_FAILURE_RATIO}",
            "for": "15m",
            "labels": {"severity": "critical"},
            "annotations": {
                "summary": "more than 10% of orders do not complete",
                "description": "{{ $value | humanizePercentage }} of sagas failed, compensated or were cancelled.",
            },
        },
        {
            "alert": "CommercePodsNotReady",
            # kube-state-metrics (part of every Prometheus Operator stack): replicas the Deployment lacks.
            "expr": f"sum by (deployment) (kube_deployment_status_replicas_unavailable{{{ns}}}) > 0",
            "for": "10m",
            "labels": {"severity": "warning"},
            "annotations": {
                "summary": "{{ $labels.deployment }}: pods not ready",
                "description": "{{ $value }} replicas unavailable for 10 minutes.",
            },
        },
    ]


def _panel(panel_id: int, title: str, unit: str, exprs: list[tuple[str, str]], x: int, y: int) -> dict:
    return {
        "id": panel_id,
        "type": "timeseries",
        "title": title,
        "datasource": {"type": "prometheus", "uid": "${datasource}"},
        "gridPos": {"h": 8, "w": 12, "x": x, "y": y},
        "fieldConfig": {"defaults": {"unit": unit}, "overrides": []},
        "targets": [
            {"refId": chr(65 + i), "expr": e, "legendFormat": legend} for i, (e, legend) in enumerate(exprs)
        ],
    }


def _http_panels(api: str) -> list[tuple[str, str, list[tuple[str, str]]]]:
    """Traffic, errors and latency of the services' own routes (probes left out)."""
    return [
        (
            "Requests per second",
            "reqps",
            [(f"sum by (job) (rate({REQUESTS}_count{{{api}}}[5m]))", "{{job}}")],
        ),
        (
            "5xx ratio",
            "percentunit",
            [
                (
                    f'sum by (job) (rate({REQUESTS}_count{{{api}, status=~"5.."}}[5m]))'
                    f" / sum by (job) (rate({REQUESTS}_count{{{api}}}[5m]))",
                    "{{job}}",
                )
            ],
        ),
        (
            "Latency p50 / p99",
            "s",
            [
                (
                    f"histogram_quantile({q}, sum by (job, le) (rate({REQUESTS}_bucket{{{api}}}[5m])))",
                    f"{{{{job}}}} p{p}",
                )
                for q, p in (("0.5", "50"), ("0.99", "99"))
            ],
        ),
    ]


def _platform_panels(ns: str) -> list[tuple[str, str, list[tuple[str, str]]]]:
    """Pools, the saga, the cache, outgoing calls, payments and logins."""
    return [
        (
            "Database pool in use",
            "short",
            [
                (f'sum by (job) (db_pool_connections{{{ns}, state="in_use"}})', "{{job}} in use"),
                (f'sum by (job) (db_pool_connections{{{ns}, state="max"}})', "{{job}} max"),
                (f"sum by (job) (db_pool_waiting{{{ns}}})", "{{job}} waiting"),
            ],
        ),
        (
            "Order saga outcomes",
            "ops",
            [(f"sum by (outcome) (rate(orders_saga_outcomes_total{{{ns}}}[5m]))", "{{outcome}}")],
        ),
        (
            "Product cache hit ratio",
            "percentunit",
            [
                (
                    f'sum(rate(cache_requests_total{{{ns}, result="hit"}}[5m]))'
                    f" / sum(rate(cache_requests_total{{{ns}}}[5m]))",
                    "hit ratio",
                )
            ],
        ),
        (
            "Outgoing calls p99 by target",
            "s",
            [
                (
                    "histogram_quantile(0.99, sum by (job, target, le) "
                    f"(rate(http_client_request_duration_seconds_bucket{{{ns}}}[5m])))",
                    "{{job}} → {{target}}",
                )
            ],
        ),
        (
            "Payments, replays and refused logins",
            "ops",
            [
                (f"sum by (result) (rate(payments_authorizations_total{{{ns}}}[5m]))", "payment {{result}}"),
                (f"sum by (resource) (rate(idempotent_replays_total{{{ns}}}[5m]))", "replay {{resource}}"),
                (f"sum by (reason) (rate(users_login_failures_total{{{ns}}}[5m]))", "login {{reason}}"),
            ],
        ),
    ]


def dashboard(namespace: str) -> dict:
    """The Grafana dashboard (schema 39): traffic, errors, latency, pools, the saga, the cache, outgoing calls."""
    ns = f'namespace="{namespace}"'
    panels = [*_http_panels(f"{ns}, route!~{PROBES}"), *_platform_panels(ns)]
    return {
        "uid": "commerce-platform",
        "title": "Commerce platform",
        "schemaVersion": 39,
        "editable": False,
        "time": {"from": "now-1h", "to": "now"},
        "refresh": "30s",
        "tags": ["commerce-platform"],
        "templating": {
            "list": [
                {"name": "datasource", "type": "datasource", "query": "prometheus", "label": "Prometheus"}
            ]
        },
        "panels": [
            _panel(i + 1, title, unit, exprs, (i % 2) * 12, (i // 2) * 8)
            for i, (title, unit, exprs) in enumerate(panels)
        ],
    }


def service_monitor(spec: catalogue.ServiceSpec, env: Environment, namespace: pulumi.Input[str]) -> Manifest:
    """Prometheus scrapes the service's metrics port (by its name on the Service) every scrape interval."""
    settings, instance = env.spec.monitoring, f"{spec.name}-{env.name}"
    return manifest(
        MONITORING_API,
        "ServiceMonitor",
        metadata(spec.name, namespace, {**labels(spec.name, instance, "api"), **settings.labels}),
        spec={
            "selector": {"matchLabels": selector(spec.name, instance, "api")},
            "endpoints": [
                {
                    "port": "metrics",
                    "path": catalogue.METRICS_PATH,
                    "scheme": "http",
                    "interval": settings.scrape_interval,
                }
            ],
        },
    )


class Monitoring(pulumi.ComponentResource):
    def __init__(
        self,
        name: str,
        env: Environment,
        namespace: pulumi.Input[str],
        services: tuple[catalogue.ServiceSpec, ...],
        targets: list[pulumi.Resource],
        opts: pulumi.ResourceOptions | None = None,
    ):
        super().__init__(f"{TYPE_PREFIX}:platform:Monitoring", name, None, opts)
        settings = env.spec.monitoring
        instance = f"commerce-{env.name}"
        own = {**labels("commerce-platform", instance, "monitoring"), **settings.labels}
        after = pulumi.ResourceOptions(parent=self, depends_on=targets)

        for spec in services:
            KubeObject(f"{spec.name}-servicemonitor", service_monitor(spec, env, namespace), after)
        rules = [{"name": "commerce-platform.slo", "rules": alert_rules(env.stack.namespace)}]
        KubeObject(
            "slo-prometheusrule",
            manifest(
                MONITORING_API,
                "PrometheusRule",
                metadata("commerce-slo", namespace, own),
                spec={"groups": rules},
            ),
            after,
        )
        KubeObject(
            "dashboard-configmap",
            manifest(
                "v1",
                "ConfigMap",
                metadata("commerce-dashboard", namespace, {**own, DASHBOARD_LABEL: "1"}),
                data={DASHBOARD_FILE: json.dumps(dashboard(env.stack.namespace), indent=2, sort_keys=True)},
            ),
            pulumi.ResourceOptions(parent=self),
        )
        self.register_outputs({})
