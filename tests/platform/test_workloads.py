"""What the rendered environments declare: wiring, probes, resources, hardening, scaling, images, namespaces."""

from __future__ import annotations

import pytest
from render_support import by_name, objects, pod_specs, rendered

from commerce_platform import catalogue
from commerce_platform.components.service import PRESTOP_SLEEP_SECONDS, TERMINATION_GRACE_SECONDS
from service_kit.serve import uvicorn_argv

SERVICE_NAMES = [s.name for s in catalogue.SERVICES]
RECOMMENDED_LABELS = {
    "app.kubernetes.io/name",
    "app.kubernetes.io/instance",
    "app.kubernetes.io/component",
    "app.kubernetes.io/part-of",
    "app.kubernetes.io/managed-by",
}
VERSION_LABEL = "app.kubernetes.io/version"


def test_hpa_targets_are_the_deployments_and_own_their_replicas(graph):
    deployments = by_name(graph, "Deployment")
    hpas = objects(graph, "HorizontalPodAutoscaler")
    assert sorted(h["spec"]["scaleTargetRef"]["name"] for h in hpas) == sorted(SERVICE_NAMES)
    for hpa in hpas:
        target = hpa["spec"]["scaleTargetRef"]
        assert hpa["apiVersion"] == "autoscaling/v2"
        assert (target["apiVersion"], target["kind"]) == ("apps/v1", "Deployment")
        assert target["name"] in deployments
        assert "replicas" not in deployments[target["name"]]["spec"], "the HPA owns the replica count"
        metrics = {m["resource"]["name"]: m["resource"]["target"] for m in hpa["spec"]["metrics"]}
        assert metrics["cpu"] == {"type": "Utilization", "averageUtilization": 70}
        # Memory does not fall when pods are added: no memory target unless set (then a share of the limit).
        assert "memory" not in metrics
        assert hpa["spec"]["behavior"]["scaleDown"]["stabilizationWindowSeconds"] == 300


def test_services_select_exactly_one_workloads_pods(graph):
    workloads = [o for o in objects(graph) if o["kind"] in ("Deployment", "StatefulSet")]
    for service in objects(graph, "Service"):
        selector = service["spec"]["selector"].items()
        matches = [
            w["metadata"]["name"]
            for w in workloads
            if selector <= w["spec"]["template"]["metadata"]["labels"].items()
        ]
        assert len(matches) == 1, (service["metadata"]["name"], matches)
        workload = next(w for w in workloads if w["metadata"]["name"] == matches[0])
        assert (
            service["spec"]["selector"].items() <= workload["spec"]["selector"]["matchLabels"].items()
            or workload["spec"]["selector"]["matchLabels"].items() <= service["spec"]["selector"].items()
        )
        ports = {
            p["containerPort"] for c in workload["spec"]["template"]["spec"]["containers"] for p in c["ports"]
        }
        assert {p["targetPort"] for p in service["spec"]["ports"]} <= ports


def test_probes_hit_the_container_port_on_the_catalogue_paths(graph):
    deployments = by_name(graph, "Deployment")
    for spec in catalogue.SERVICES:
        container = deployments[spec.name]["spec"]["template"]["spec"]["containers"][0]
        ports = {p["name"]: p["containerPort"] for p in container["ports"]}
        assert ports == {"http": spec.port, "metrics": spec.metrics_port}
        probes = {
            kind: container[kind]["httpGet"] for kind in ("startupProbe", "livenessProbe", "readinessProbe")
        }
        assert {p["port"] for p in probes.values()} == {spec.port}
        assert probes["livenessProbe"]["path"] == catalogue.LIVENESS_PATH == "/health"
        assert probes["readinessProbe"]["path"] == catalogue.READINESS_PATH == "/ready"
        command = container["command"]
        assert command[command.index("--port") + 1] == str(spec.port)
        assert command[1] == spec.app
        assert command == uvicorn_argv(spec.app, spec.port)  # the one server command line (service_kit.serve)


def test_every_container_has_requests_and_a_memory_limit(graph):
    for name, pod in pod_specs(graph):
        for container in pod["containers"] + pod.get("initContainers", []):
            res = container["resources"]
            assert set(res["requests"]) >= {"cpu", "memory"}, name
            assert "memory" in res["limits"], name


def test_every_pod_is_restricted(graph):
    for name, pod in pod_specs(graph):
        assert pod["automountServiceAccountToken"] is False, name
        account = pod.get("serviceAccountName")
        assert account not in (None, "default"), name
        assert by_name(graph, "ServiceAccount")[account]["automountServiceAccountToken"] is False, name
        assert pod["securityContext"]["runAsNonRoot"] is True, name
        assert pod["securityContext"]["seccompProfile"] == {"type": "RuntimeDefault"}, name
        for container in pod["containers"]:
            sc = container["securityContext"]
            assert sc["allowPrivilegeEscalation"] is False, name
            assert sc["readOnlyRootFilesystem"] is True, name
            assert sc["capabilities"] == {"drop": ["ALL"]}, name
            assert sc["runAsNonRoot"] is True, name
            assert "/tmp" in {m["mountPath"] for m in container.get("volumeMounts", [])}, name


def test_service_pods_shut_down_gracefully_and_roll_without_losing_capacity(graph):
    deployments = by_name(graph, "Deployment")
    for spec in catalogue.SERVICES:
        deployment = deployments[spec.name]
        pod = deployment["spec"]["template"]["spec"]
        container = pod["containers"][0]
        graceful = int(container["command"][container["command"].index("--timeout-graceful-shutdown") + 1])
        assert container["lifecycle"]["preStop"]["sleep"]["seconds"] == PRESTOP_SLEEP_SECONDS
        assert (
            pod["terminationGracePeriodSeconds"]
            == TERMINATION_GRACE_SECONDS
            > PRESTOP_SLEEP_SECONDS + graceful
        )
        assert deployment["spec"]["strategy"]["rollingUpdate"]["maxUnavailable"] == 0
        spread = {c["topologyKey"]: c for c in pod["topologySpreadConstraints"]}
        assert set(spread) >= {"kubernetes.io/hostname"}
        if graph["environment"] == "prod":  # 2+ replicas: never two on one node
            assert spread["kubernetes.io/hostname"]["whenUnsatisfiable"] == "DoNotSchedule"
            assert spread["kubernetes.io/hostname"]["minDomains"] == 2
        assert pod["serviceAccountName"] == spec.name
        assert by_name(graph, "ServiceAccount")[spec.name]["automountServiceAccountToken"] is False


def test_each_service_has_a_pdb_and_a_migration_job_running_migrate(graph):
    pdbs = by_name(graph, "PodDisruptionBudget")
    jobs = by_name(graph, "Job")
    deployments = by_name(graph, "Deployment")
    for spec in catalogue.SERVICES:
        pod_labels = deployments[spec.name]["spec"]["template"]["metadata"]["labels"]
        assert pdbs[spec.name]["spec"]["selector"]["matchLabels"].items() <= pod_labels.items()
        job = jobs[f"{spec.name}-migrate"]["spec"]["template"]
        container = job["spec"]["containers"][0]
        assert container["command"] == ["migrate", spec.package]
        assert (
            container["image"] == deployments[spec.name]["spec"]["template"]["spec"]["containers"][0]["image"]
        )
        assert [e["name"] for e in container["env"]] == ["DATABASE_URL"]
        # a migration pod must not be mistaken for a serving pod
        assert (
            not deployments[spec.name]["spec"]["selector"]["matchLabels"].items()
            <= job["metadata"]["labels"].items()
        )


def test_every_object_is_named_and_carries_the_recommended_labels(graph):
    for obj in objects(graph):
        assert obj["metadata"]["name"], obj["kind"]
        assert RECOMMENDED_LABELS <= set(obj["metadata"]["labels"]), (obj["kind"], obj["metadata"]["name"])


def test_the_version_label_is_on_service_pod_templates_only(graph):
    # A promotion changes what runs (the pod templates), not the metadata of every object of the service.
    for obj in objects(graph):
        if obj["metadata"]["labels"].get("app.kubernetes.io/name") in SERVICE_NAMES:
            assert VERSION_LABEL not in obj["metadata"]["labels"], (obj["kind"], obj["metadata"]["name"])
            if obj["kind"] in ("Deployment", "Job"):
                assert VERSION_LABEL in obj["spec"]["template"]["metadata"]["labels"]


def test_namespace_enforces_restricted_pod_security_and_everything_lives_in_it(graph):
    (namespace,) = objects(graph, "Namespace")
    labels = namespace["metadata"]["labels"]
    assert labels["pod-security.kubernetes.io/enforce"] == "restricted"
    assert labels["pod-security.kubernetes.io/enforce-version"] == f"v{graph['k8s_version']}"
    name = namespace["metadata"]["name"]
    assert graph["outputs"]["namespace"] == name
    for obj in objects(graph):
        if obj["kind"] != "Namespace":
            assert obj["metadata"]["namespace"] == name, (obj["kind"], obj["metadata"]["name"])


def test_network_policy_denies_by_default_and_allows_only_the_catalogue_edges(graph):
    policies = by_name(graph, "NetworkPolicy")
    deny = policies["default-deny"]["spec"]
    assert deny["podSelector"] == {} and sorted(deny["policyTypes"]) == ["Egress", "Ingress"]
    assert "allow-dns-egress" in policies
    for caller in catalogue.SERVICES:
        for callee in caller.calls:
            assert f"{callee}-from-{caller.name}" in policies
            assert f"{caller.name}-to-{callee}" in policies
    for spec in catalogue.SERVICES:
        assert (f"{spec.name}-from-ingress" in policies) == bool(spec.public_prefixes)
    # nothing else may reach a service: every ingress allow names a known caller or the ingress controller
    allowed = {f"{callee}-from-{s.name}" for s in catalogue.SERVICES for callee in s.calls}
    allowed |= {f"{s.name}-from-ingress" for s in catalogue.SERVICES}
    allowed |= {f"users-from-{s.name}" for s in catalogue.SERVICES if s.name != "users"}  # JWKS
    allowed |= {"postgres-from-clients", "redis-from-clients"}
    allowed |= {
        f"{s.name}-metrics-from-monitoring" for s in catalogue.SERVICES
    }  # Prometheus, metrics port only
    ingress_policies = {
        n for n, p in policies.items() if "Ingress" in p["spec"]["policyTypes"] and n != "default-deny"
    }
    assert ingress_policies <= allowed


def test_ingress_routes_every_public_prefix_to_its_service(graph):
    (ingress,) = objects(graph, "Ingress")
    (rule,) = ingress["spec"]["rules"]
    routes = {
        p["path"]: (p["backend"]["service"]["name"], p["backend"]["service"]["port"]["number"])
        for p in rule["http"]["paths"]
    }
    expected = {prefix: (s.name, s.port) for s in catalogue.SERVICES for prefix in s.public_prefixes}
    assert routes == expected
    scheme = "https" if ingress["spec"].get("tls") else "http"
    assert graph["outputs"]["public_url"] == f"{scheme}://{rule['host']}"


def test_dev_builds_every_image_and_runs_it_by_digest():
    graph = rendered("dev")
    images = [r for r in graph["resources"] if r["type"] == "docker:index/image:Image"]
    assert sorted(r["name"] for r in images) == sorted(f"{s}-image" for s in SERVICE_NAMES)
    for r in images:
        service = r["name"].removesuffix("-image")
        assert r["props"]["build"]["context"] == ".."
        assert r["props"]["build"]["dockerfile"] == "../services/Dockerfile"  # one Dockerfile, by build args
        assert r["props"]["build"]["args"] == {"SERVICE": service, "PORT": str(catalogue.get(service).port)}
    for name, ref in graph["outputs"]["images"].items():
        assert "@sha256:" in ref
        assert by_name(graph, "Deployment")[name]["spec"]["template"]["spec"]["containers"][0]["image"] == ref


def test_prod_builds_nothing_and_runs_only_pinned_digests():
    graph = rendered("prod")
    assert not [r for r in graph["resources"] if r["type"].startswith("docker:")]
    for name, pod in pod_specs(graph):
        for container in pod["containers"]:
            image = container["image"]
            assert "@sha256:" in image and ":latest" not in image, (name, image)
    assert set(graph["outputs"]["images"]) == set(SERVICE_NAMES)
    assert all("@sha256:" in ref for ref in graph["outputs"]["images"].values())
    for hpa in objects(graph, "HorizontalPodAutoscaler"):
        assert (hpa["spec"]["minReplicas"], hpa["spec"]["maxReplicas"]) == (2, 10)
    assert objects(graph, "StatefulSet") == []  # managed Postgres and Redis in prod
    policies = by_name(graph, "NetworkPolicy")
    assert "postgres-from-clients" not in policies and "redis-from-clients" not in policies
    egress = policies["postgres-clients-egress"]["spec"]["egress"][0]
    assert egress["to"] == [{"ipBlock": {"cidr": "10.40.0.0/24"}}]  # environments/prod.yaml postgres.cidrs
    assert egress["ports"] == [{"port": 5432, "protocol": "TCP"}]


def test_dev_runs_postgres_and_redis_in_cluster_with_a_retained_volume():
    graph = rendered("dev")
    (statefulset,) = objects(graph, "StatefulSet")
    assert statefulset["spec"]["serviceName"] == "postgres"
    assert by_name(graph, "Service")["postgres"]["spec"]["clusterIP"] == "None"
    assert statefulset["spec"]["persistentVolumeClaimRetentionPolicy"] == {
        "whenDeleted": "Retain",
        "whenScaled": "Retain",
    }
    init = by_name(graph, "Job")["postgres-init"]["spec"]["template"]["spec"]["containers"][0]
    env_names = {e["name"] for e in init["env"]}
    assert {f"{s.upper()}_PASSWORD" for s in SERVICE_NAMES} <= env_names
    script = by_name(graph, "ConfigMap")["postgres-init-script"]["data"]["init.sql"]
    for s in SERVICE_NAMES:
        assert f"\\getenv password {s.upper()}_PASSWORD" in script
    redis = by_name(graph, "Deployment")["redis"]["spec"]["template"]["spec"]["containers"][0]
    assert redis["args"][:2] == ["--requirepass", "$(REDIS_PASSWORD)"]
    for hpa in objects(graph, "HorizontalPodAutoscaler"):
        assert (hpa["spec"]["minReplicas"], hpa["spec"]["maxReplicas"]) == (1, 3)


def test_review_stack_is_namespaced_minimal_and_leaves_no_volume_behind():
    graph = rendered("pr-42")
    dev = rendered("dev")
    assert graph["outputs"]["namespace"] == f"{dev['outputs']['namespace']}-pr-42"
    assert graph["outputs"]["public_url"] == "http://pr-42.dev.commerce.example.com"
    (statefulset,) = objects(graph, "StatefulSet")
    assert statefulset["spec"]["persistentVolumeClaimRetentionPolicy"] == {
        "whenDeleted": "Delete",
        "whenScaled": "Delete",
    }
    for hpa in objects(graph, "HorizontalPodAutoscaler"):
        assert (hpa["spec"]["minReplicas"], hpa["spec"]["maxReplicas"]) == (1, 1)
    urns = {r["urn"] for r in graph["resources"]}
    assert all(urn.startswith("urn:pulumi:pr-42::commerce-platform::") for urn in urns)


@pytest.mark.parametrize("env", ["dev", "prod", "pr-42"])
def test_graph_records_parents_and_dependencies(env):
    graph = rendered(env)
    resources = {r["urn"]: r for r in graph["resources"]}
    assert [r["urn"] for r in graph["resources"]] == sorted(resources)
    for r in graph["resources"]:
        if r["type"] == "pulumi:pulumi:Stack":
            continue
        assert r["parent"] in resources, r["urn"]
        assert set(r["dependencies"]) <= set(resources), r["urn"]
        if r["type"].startswith("kubernetes:") and not r["type"].startswith("pulumi:providers"):
            assert r["provider"] == "kubernetes", r["urn"]  # the explicit provider, never the default
    deployments = [
        r
        for r in graph["resources"]
        if r["type"] == "kubernetes:apps/v1:Deployment" and r["name"] == "orders-deployment"
    ]
    (orders,) = deployments
    assert resources[orders["parent"]]["type"] == "commerce-platform:app:ServiceDeployment"
    assert any(resources[d]["type"] == "kubernetes:batch/v1:Job" for d in orders["dependencies"])
