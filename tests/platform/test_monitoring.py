"""Monitoring in the render: a validated ServiceMonitor per service, the alert rules, the dashboard, and network
paths that let the monitoring namespace reach the metrics ports only (and nobody else reach them)."""

from __future__ import annotations

import json

import pytest
from render_support import by_name, objects, rendered

from commerce_ops.local.gateway import Gateway
from commerce_ops.render.manifests import ManifestInvalid, validate
from commerce_platform import catalogue
from commerce_platform.components.monitoring import DASHBOARD_FILE, DASHBOARD_LABEL
from commerce_platform.policy.k8s import selector_matches

NAME = "kubernetes.io/metadata.name"


def admits(policies: list[dict], namespace: str, peer_ns: dict, peer_pod: dict, pod: dict, port: int) -> bool:
    """Whether NetworkPolicy ingress rules let a pod (labels `peer_pod`, in a namespace labelled `peer_ns`) reach
    `pod` (labels) in `namespace` on TCP `port`: some policy selecting `pod` has a rule whose peers match and
    whose ports include `port` (no ports: all). Default-deny selects every pod but admits nothing."""
    same_namespace = peer_ns.get(NAME) == namespace
    for policy in policies:
        spec = policy["spec"]
        if "Ingress" not in spec["policyTypes"] or not selector_matches(spec["podSelector"], pod):
            continue
        for rule in spec.get("ingress") or []:
            ports = rule.get("ports")
            if ports and not any(p.get("port") == port and p.get("protocol", "TCP") == "TCP" for p in ports):
                continue
            for peer in rule.get("from") or []:
                ns_ok = (
                    selector_matches(peer["namespaceSelector"], peer_ns)
                    if "namespaceSelector" in peer
                    else same_namespace
                )
                pod_ok = selector_matches(peer["podSelector"], peer_pod) if "podSelector" in peer else True
                if ns_ok and pod_ok:
                    return True
    return False


def pod_labels(graph: dict, service: str) -> dict:
    return by_name(graph, "Deployment")[service]["spec"]["template"]["metadata"]["labels"]


def container_ports(graph: dict, service: str) -> dict[str, int]:
    (container,) = by_name(graph, "Deployment")[service]["spec"]["template"]["spec"]["containers"]
    return {p["name"]: p["containerPort"] for p in container["ports"]}


def test_the_evaluator_reads_policies_as_kubernetes_does():
    """The evaluator against hand-made policies, before it judges the real ones."""
    deny = {"spec": {"podSelector": {}, "policyTypes": ["Ingress"]}}
    allow = {
        "spec": {
            "podSelector": {"matchLabels": {"app": "a"}},
            "policyTypes": ["Ingress"],
            "ingress": [
                {"from": [{"namespaceSelector": {"matchLabels": {NAME: "mon"}}}], "ports": [{"port": 9}]}
            ],
        }
    }
    mon, other = {NAME: "mon"}, {NAME: "other"}
    assert not admits([deny], "ns", mon, {}, {"app": "a"}, 9)
    assert admits([deny, allow], "ns", mon, {}, {"app": "a"}, 9)
    assert not admits([deny, allow], "ns", mon, {}, {"app": "a"}, 8)
    assert not admits([deny, allow], "ns", other, {}, {"app": "a"}, 9)
    assert not admits([deny, allow], "ns", mon, {}, {"app": "b"}, 9)


def test_prod_has_a_validated_servicemonitor_per_service_on_its_metrics_port():
    graph = rendered("prod")
    monitors = by_name(graph, "ServiceMonitor")
    assert sorted(monitors) == sorted(s.name for s in catalogue.SERVICES)
    services = by_name(graph, "Service")
    for spec in catalogue.SERVICES:
        monitor = monitors[spec.name]
        assert monitor["apiVersion"] == "monitoring.coreos.com/v1"
        assert (
            monitor["metadata"]["labels"]["release"] == "kube-prometheus-stack"
        )  # prod's Prometheus selector
        selected = [
            s
            for s in services.values()
            if selector_matches(monitor["spec"]["selector"], s["metadata"]["labels"])
        ]
        assert [s["metadata"]["name"] for s in selected] == [spec.name]
        (endpoint,) = monitor["spec"]["endpoints"]
        assert (endpoint["port"], endpoint["path"]) == ("metrics", catalogue.METRICS_PATH)
        ports = {p["name"]: p for p in selected[0]["spec"]["ports"]}
        assert ports["metrics"]["port"] == ports["metrics"]["targetPort"] == spec.metrics_port
        assert container_ports(graph, spec.name) == {"http": spec.port, "metrics": spec.metrics_port}
        deployment_env = {
            e["name"]
            for e in by_name(graph, "Deployment")[spec.name]["spec"]["template"]["spec"]["containers"][0][
                "env"
            ]
        }
        assert {"METRICS_PORT", "OTEL_TRACES_EXPORTER"} <= deployment_env
        config = by_name(graph, "ConfigMap")[f"{spec.name}-config"]["data"]
        assert (config["METRICS_PORT"], config["OTEL_TRACES_EXPORTER"]) == (str(spec.metrics_port), "none")


def test_the_schema_check_is_strict_for_the_custom_resources():
    monitor = by_name(rendered("prod"), "ServiceMonitor")["orders"]
    validate(monitor, "1.31")
    monitor["spec"]["endpoints"][0]["scrapeEvery"] = "30s"
    with pytest.raises(ManifestInvalid, match="scrapeEvery"):
        validate(monitor, "1.31")
    monitor["spec"]["endpoints"][0] = {"port": "metrics", "interval": "half a minute"}
    with pytest.raises(ManifestInvalid, match="interval"):
        validate(monitor, "1.31")


def test_prod_alerts_on_the_slos_and_ships_the_dashboard_for_the_sidecar():
    graph = rendered("prod")
    (rule,) = objects(graph, "PrometheusRule")
    (group,) = rule["spec"]["groups"]
    alerts = {r["alert"]: r for r in group["rules"]}
    assert sorted(alerts) == [
        "CommerceHighErrorRatio",
        "CommerceHighLatencyP99",
        "CommerceOrderSagaFailureRatio",
        "CommercePodsNotReady",
    ]
    namespace = graph["outputs"]["namespace"]
    for alert in alerts.values():
        assert f'namespace="{namespace}"' in alert["expr"] and alert["for"] and alert["labels"]["severity"]
    assert 'status=~"5.."' in alerts["CommerceHighErrorRatio"]["expr"]
    assert "histogram_quantile(0.99" in alerts["CommerceHighLatencyP99"]["expr"]
    assert 'outcome!="completed"' in alerts["CommerceOrderSagaFailureRatio"]["expr"]
    (dashboard,) = [
        c for c in objects(graph, "ConfigMap") if c["metadata"]["labels"].get(DASHBOARD_LABEL) == "1"
    ]
    board = json.loads(dashboard["data"][DASHBOARD_FILE])
    exprs = " ".join(t["expr"] for panel in board["panels"] for t in panel["targets"])
    for metric in (
        "http_server_request_duration_seconds_bucket",
        "db_pool_connections",
        "orders_saga_outcomes_total",
        "cache_requests_total",
        "http_client_request_duration_seconds_bucket",
    ):
        assert metric in exprs


def test_monitoring_namespace_reaches_each_service_on_its_metrics_port_only():
    graph = rendered("prod")
    namespace = graph["outputs"]["namespace"]
    policies = objects(graph, "NetworkPolicy")
    prometheus = ({NAME: "monitoring"}, {"app.kubernetes.io/name": "prometheus"})
    ingress_controller = ({NAME: "traefik"}, {"app.kubernetes.io/name": "traefik"})
    orders = ({NAME: namespace}, pod_labels(graph, "orders"))
    for spec in catalogue.SERVICES:
        pod = pod_labels(graph, spec.name)
        assert admits(policies, namespace, *prometheus, pod, spec.metrics_port), spec.name
        assert not admits(policies, namespace, *prometheus, pod, spec.port), spec.name
        # ... and the metrics port is for the monitoring namespace alone.
        assert admits(policies, namespace, *ingress_controller, pod, spec.port), spec.name
        assert not admits(policies, namespace, *ingress_controller, pod, spec.metrics_port), spec.name
        if spec.name in catalogue.get("orders").calls:
            assert admits(policies, namespace, *orders, pod, spec.port)
            assert not admits(policies, namespace, *orders, pod, spec.metrics_port)


def test_neither_the_ingress_nor_the_gateway_routes_metrics():
    graph = rendered("prod")
    (ingress,) = objects(graph, "Ingress")
    metrics_ports = {s.metrics_port for s in catalogue.SERVICES}
    for path in ingress["spec"]["rules"][0]["http"]["paths"]:
        assert not catalogue.METRICS_PATH.startswith(path["path"].rstrip("/") + "/")
        assert path["path"] != catalogue.METRICS_PATH
        assert path["backend"]["service"]["port"]["number"] not in metrics_ports
    gateway = Gateway(
        {p: f"http://127.0.0.1:{s.port}" for s in catalogue.SERVICES for p in s.public_prefixes}
    )
    assert gateway.route_for(catalogue.METRICS_PATH) is None
    assert all(not r.upstream.endswith(tuple(f":{p}" for p in metrics_ports)) for r in gateway.routes)


@pytest.mark.parametrize("env", ["dev", "pr-42"])
def test_monitoring_is_switched_per_environment(env):
    graph = rendered(env)
    assert objects(graph, "ServiceMonitor") == [] and objects(graph, "PrometheusRule") == []
    assert not [c for c in objects(graph, "ConfigMap") if DASHBOARD_LABEL in c["metadata"]["labels"]]
    assert not [n for n in by_name(graph, "NetworkPolicy") if n.endswith("-metrics-from-monitoring")]
    (namespace,) = objects(graph, "Namespace")
    assert catalogue.MONITORING_LABEL not in namespace["metadata"]["labels"]
    # The services still serve /metrics on their metrics ports (for `ops dev top`), unreachable in the cluster.
    for spec in catalogue.SERVICES:
        assert container_ports(graph, spec.name)["metrics"] == spec.metrics_port
    assert (
        by_name(rendered("prod"), "Namespace")["commerce-prod"]["metadata"]["labels"][
            catalogue.MONITORING_LABEL
        ]
        == "enabled"
    )
