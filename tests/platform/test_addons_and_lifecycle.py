"""Cluster add-ons as pinned Helm releases, the prod TLS Certificate, and the lifecycle options in graph.json."""

from __future__ import annotations

import pytest
from render_support import by_name, objects, rendered

from commerce_ops.render import render_environment
from commerce_platform.catalogue import METRICS_API_LABEL
from commerce_platform.components.addons import CHARTS
from commerce_platform.policy import evaluate_graph

pytestmark = pytest.mark.platform
RELEASE = "kubernetes:helm.sh/v3:Release"


def releases(graph: dict) -> dict[str, dict]:
    return {r["props"]["chart"]: r for r in graph["resources"] if r["type"] == RELEASE}


def test_prod_renders_metrics_server_traefik_and_cert_manager_as_pinned_releases():
    graph = rendered("prod")
    found = releases(graph)
    assert set(found) == {"metrics-server", "traefik", "cert-manager"}
    for chart in CHARTS:
        props = found[chart.name]["props"]
        assert props["version"] == chart.version and props["repositoryOpts"] == {"repo": chart.repo}
        assert props["atomic"] is True
    assert found["traefik"]["props"]["values"]["ingressClass"]["name"] == "traefik"
    assert found["cert-manager"]["props"]["values"] == {"crds": {"enabled": True}}
    # A release is no Kubernetes object of its own: graph.json holds it, no manifest does.
    assert not [m for m in graph["manifests"] if "chart" in m["object"]]


def test_prod_tls_certificate_creates_the_secret_its_ingress_serves():
    graph = rendered("prod")
    [ingress] = objects(graph, "Ingress")
    [tls] = ingress["spec"]["tls"]
    [certificate] = objects(graph, "Certificate")
    [issuer] = objects(graph, "Issuer")
    assert certificate["spec"]["secretName"] == tls["secretName"] == "commerce-prod-tls"
    assert certificate["spec"]["dnsNames"] == tls["hosts"] == ["commerce.example.com"]
    assert certificate["spec"]["issuerRef"] == {"name": issuer["metadata"]["name"], "kind": "Issuer"}
    solver = issuer["spec"]["acme"]["solvers"][0]["http01"]["ingress"]
    assert solver["ingressClassName"] == ingress["spec"]["ingressClassName"] == "traefik"
    certificate_entry = next(r for r in graph["resources"] if r["name"] == "tls-certificate")
    release_urn = releases(graph)["cert-manager"]["urn"]
    assert release_urn in certificate_entry["dependencies"]  # the CRDs exist before the Certificate


def test_dev_installs_metrics_server_and_traefik_on_the_kind_node_port_and_review_stacks_use_devs():
    dev = releases(rendered("dev"))
    assert set(dev) == {"metrics-server", "traefik"}
    assert dev["traefik"]["props"]["values"]["service"] == {"type": "NodePort"}
    assert dev["traefik"]["props"]["values"]["ports"] == {"web": {"nodePort": 30080.0}}
    review = rendered("pr-42")
    assert releases(review) == {}  # a second copy in dev's cluster would fight over cluster-wide objects
    [namespace] = objects(review, "Namespace")
    assert namespace["metadata"]["labels"][METRICS_API_LABEL] == "cluster"
    assert [v for v in evaluate_graph(review) if v.rule.id == "hpa-has-metrics-api"] == []


def test_an_hpa_without_a_metrics_api_fails_policy(repo_copy):
    text = (repo_copy / "environments/dev.yaml").read_text()
    (repo_copy / "environments/dev.yaml").write_text(
        text.replace("metrics_server: release", 'metrics_server: "off"')
    )
    graph = render_environment("dev", repo_copy, check_schema=False)
    failing = {v.resource.display for v in evaluate_graph(graph) if v.rule.id == "hpa-has-metrics-api"}
    assert failing == {
        f"HorizontalPodAutoscaler/commerce-dev/{s}" for s in ("users", "inventory", "orders", "payments")
    }


def test_graph_records_lifecycle_options_and_retained_data_is_protected():
    dev = {r["name"]: r for r in rendered("dev")["resources"]}
    assert dev["namespace"]["options"] == {"protect": True}
    # Fixed-name workloads delete before a replace (an immutable field changed), retained data or not.
    assert dev["postgres-statefulset"]["options"] == {"protect": True, "deleteBeforeReplace": True}
    assert dev["users-migration"]["options"] == {"deleteBeforeReplace": True}
    assert dev["users-deployment"]["options"] == {"deleteBeforeReplace": True}
    review = {r["name"]: r for r in rendered("pr-42")["resources"]}
    assert "options" not in review["namespace"]
    assert review["postgres-statefulset"]["options"] == {"deleteBeforeReplace": True}
    for env in ("dev", "pr-42", "prod"):
        assert [v for v in evaluate_graph(rendered(env)) if v.rule.id == "retained-data-protected"] == []


def test_failed_jobs_are_replaced_on_the_next_up():
    for job in objects(rendered("dev"), "Job"):
        assert job["metadata"]["annotations"]["pulumi.com/replaceUnready"] == "true", job["metadata"]["name"]
    assert by_name(rendered("prod"), "Job")  # prod's migrations too
    for job in objects(rendered("prod"), "Job"):
        assert job["metadata"]["annotations"]["pulumi.com/replaceUnready"] == "true"


def test_stack_image_repository_overrides_the_environment_file(repo_copy):
    path = repo_copy / "Pulumi.dev.yaml"
    path.write_text(path.read_text() + "  commerce-platform:imageRepository: localhost:5001/commerce\n")
    graph = render_environment("dev", repo_copy, check_schema=False)
    assert all(ref.startswith("localhost:5001/commerce/") for ref in graph["outputs"]["images"].values())
