"""Per-rule fixture cases: (rule id, what the edit does, edit, environment) applied to the compliant stack."""

from __future__ import annotations

from policy_objects import entry, find, first_container, helm_release, pod_template_of, remove, selector

from commerce_platform.catalogue import METRICS_API_LABEL, MONITORING_LABEL


def set_security(key, value, kind="Deployment", name=None):
    return lambda s: first_container(s, kind, name)["securityContext"].__setitem__(key, value)


def add_volume(volume):
    return lambda s: pod_template_of(find(s, "Deployment"))["spec"]["volumes"].append(volume)


def set_env(name, **spec):
    def edit(s):
        env = first_container(s)["env"]
        env[:] = [e for e in env if e["name"] != name] + [{"name": name, **spec}]

    return edit


def drop_pod_and_container(key):
    def edit(s):
        spec = pod_template_of(find(s, "Deployment"))["spec"]
        spec["securityContext"].pop(key, None)
        spec["containers"][0]["securityContext"].pop(key, None)

    return edit


def add_service(name, service_type, component="service"):
    def edit(s):
        e = entry(
            "Service", name, {"spec": {"type": service_type, "selector": {"app.kubernetes.io/name": "users"}}}
        )
        e["props"]["metadata"]["labels"]["app.kubernetes.io/component"] = component
        s.append(e)

    return edit


def set_spec(kind, key, value, name=None):
    return lambda s: find(s, kind, name)["spec"].__setitem__(key, value)


def pod_spec_set(key, value, kind="Deployment", name=None):
    return lambda s: pod_template_of(find(s, kind, name))["spec"].__setitem__(key, value)


def monitoring(scraped_port: str | None = None, namespace_label: bool = True):
    """Monitoring on (the Namespace's label); with `scraped_port`, a ServiceMonitor of the users Service on a
    port of that name, the Service naming its ports `http` and `metrics`."""

    def edit(s):
        if namespace_label:
            find(s, "Namespace")["metadata"]["labels"][MONITORING_LABEL] = "enabled"
        find(s, "Service", "users")["spec"]["ports"] = [
            {"name": "http", "port": 80.0, "targetPort": "http"},
            {"name": "metrics", "port": 9001.0, "targetPort": 9001.0},
        ]
        if scraped_port is not None:
            body = {"spec": {"selector": selector("users"), "endpoints": [{"port": scraped_port}]}}
            s.append(entry("ServiceMonitor", "users", body))

    return edit


# (rule id, what the edit does, edit, environment)
def retain_postgres(protect_statefulset: bool, protect_namespace: bool):
    """The postgres StatefulSet retains its claims; protect it and/or its Namespace (graph.json options)."""

    def edit(s):
        find(s, "StatefulSet")["spec"]["persistentVolumeClaimRetentionPolicy"] = {
            "whenDeleted": "Retain",
            "whenScaled": "Retain",
        }
        for e in s:
            if e["props"].get("kind") == "StatefulSet" and protect_statefulset:
                e["options"] = {"protect": True}
            if e["props"].get("kind") == "Namespace" and protect_namespace:
                e["options"] = {"protect": True}

    return edit


def egress_to(cidr: str):
    def edit(s):
        spec = find(s, "NetworkPolicy", "default-deny")["spec"]
        spec["egress"] = [
            {"to": [{"ipBlock": {"cidr": cidr}}], "ports": [{"port": 5432.0, "protocol": "TCP"}]}
        ]

    return edit


VIOLATIONS = [
    ("egress-not-everywhere", "egress to 0.0.0.0/0 in prod", egress_to("0.0.0.0/0"), "prod"),
    (
        "retained-data-protected",
        "retained claims, unprotected StatefulSet",
        retain_postgres(False, True),
        "dev",
    ),
    (
        "retained-data-protected",
        "retained claims in an unprotected Namespace (its deletion deletes them)",
        retain_postgres(True, False),
        "dev",
    ),
    (
        "hpa-has-metrics-api",
        "an HPA, no metrics-server release, and the cluster provides no metrics API",
        lambda s: find(s, "Namespace")["metadata"]["labels"].pop(METRICS_API_LABEL),
        "prod",
    ),
    (
        "helm-release-pinned",
        "a version range",
        lambda s: s.append(helm_release("traefik", "^37.0.0")),
        "prod",
    ),
    (
        "helm-release-pinned",
        "no version (whatever is latest)",
        lambda s: s.append(helm_release("metrics-server", None)),
        "dev",
    ),
    ("deployment-scraped", "monitoring on, no ServiceMonitor", monitoring(), "prod"),
    ("deployment-scraped", "ServiceMonitor on a port the Service lacks", monitoring("metric"), "prod"),
    (
        "service-account-exists",
        "pod names an undeclared ServiceAccount",
        pod_spec_set("serviceAccountName", "ghost"),
        "dev",
    ),
    ("no-privileged", "privileged container", set_security("privileged", True), "dev"),
    (
        "no-privileged",
        "privileged init container in a Job",
        lambda s: pod_template_of(find(s, "Job"))["spec"].__setitem__(
            "initContainers",
            [
                first_container(s, "Job")
                | {
                    "name": "init",
                    "securityContext": {**first_container(s, "Job")["securityContext"], "privileged": True},
                }
            ],
        ),
        "dev",
    ),
    (
        "no-privilege-escalation",
        "allowPrivilegeEscalation true",
        set_security("allowPrivilegeEscalation", True),
        "dev",
    ),
    (
        "no-privilege-escalation",
        "allowPrivilegeEscalation unset in a CronJob",
        lambda s: first_container(s, "CronJob")["securityContext"].pop("allowPrivilegeEscalation"),
        "dev",
    ),
    (
        "run-as-non-root",
        "runAsNonRoot unset on pod and container",
        drop_pod_and_container("runAsNonRoot"),
        "dev",
    ),
    ("run-as-non-root", "container overrides runAsNonRoot false", set_security("runAsNonRoot", False), "dev"),
    ("no-root-uid", "container runAsUser 0", set_security("runAsUser", 0.0), "dev"),
    (
        "no-root-uid",
        "pod runAsUser 0 in a StatefulSet",
        lambda s: pod_template_of(find(s, "StatefulSet"))["spec"]["securityContext"].__setitem__(
            "runAsUser", 0
        ),
        "dev",
    ),
    ("drop-all-capabilities", "capabilities not dropped", set_security("capabilities", {}), "dev"),
    (
        "drop-all-capabilities",
        "adds NET_ADMIN",
        set_security("capabilities", {"drop": ["ALL"], "add": ["NET_ADMIN"]}),
        "dev",
    ),
    ("seccomp-runtime-default", "seccomp unset", drop_pod_and_container("seccompProfile"), "dev"),
    (
        "seccomp-runtime-default",
        "seccomp Unconfined",
        set_security("seccompProfile", {"type": "Unconfined"}),
        "dev",
    ),
    ("no-host-namespaces", "hostNetwork", pod_spec_set("hostNetwork", True), "dev"),
    ("no-host-namespaces", "hostPID in a Job", pod_spec_set("hostPID", True, "Job"), "dev"),
    (
        "no-host-ports",
        "hostPort",
        lambda s: first_container(s)["ports"][0].__setitem__("hostPort", 8080.0),
        "dev",
    ),
    (
        "no-host-path",
        "hostPath volume",
        add_volume({"name": "docker", "hostPath": {"path": "/var/run"}}),
        "dev",
    ),
    (
        "restricted-volume-types",
        "nfs volume",
        add_volume({"name": "share", "nfs": {"server": "x", "path": "/"}}),
        "dev",
    ),
    ("read-only-root-filesystem", "writable root fs", set_security("readOnlyRootFilesystem", False), "dev"),
    ("probes-present", "no liveness probe", lambda s: first_container(s).pop("livenessProbe"), "dev"),
    (
        "probes-present",
        "no readiness probe on a StatefulSet",
        lambda s: first_container(s, "StatefulSet").pop("readinessProbe"),
        "dev",
    ),
    (
        "probes-distinct",
        "liveness == readiness",
        lambda s: first_container(s).__setitem__("livenessProbe", dict(first_container(s)["readinessProbe"])),
        "dev",
    ),
    (
        "resource-requests",
        "no cpu request",
        lambda s: first_container(s)["resources"]["requests"].pop("cpu"),
        "dev",
    ),
    (
        "resource-requests",
        "no requests at all in a Job",
        lambda s: first_container(s, "Job")["resources"].pop("requests"),
        "dev",
    ),
    ("memory-limit", "no memory limit", lambda s: first_container(s)["resources"].pop("limits"), "dev"),
    (
        "image-tag-pinned",
        ":latest",
        lambda s: first_container(s).__setitem__("image", "ghcr.io/x/users:latest"),
        "dev",
    ),
    (
        "image-tag-pinned",
        "untagged (registry with port)",
        lambda s: first_container(s).__setitem__("image", "registry:5000/users"),
        "dev",
    ),
    (
        "image-from-environment-registry",
        "a dev-registry digest in prod",
        lambda s: first_container(s).__setitem__(
            "image", f"registry.dev.commerce.example.com/commerce/users@sha256:{'a' * 64}"
        ),
        "prod",
    ),
    (
        "image-from-environment-registry",
        "prod's registry in a review stack (pr-<N> pulls from dev's)",
        lambda s: first_container(s, "Job").__setitem__(
            "image", f"ghcr.io/commerce-platform/users@sha256:{'a' * 64}"
        ),
        "pr-42",
    ),
    (
        "image-digest-pinned",
        "tag in prod",
        lambda s: first_container(s).__setitem__("image", "ghcr.io/x/users:1.2.3"),
        "prod",
    ),
    (
        "namespace-not-default",
        "default namespace",
        lambda s: find(s, "Service")["metadata"].__setitem__("namespace", "default"),
        "dev",
    ),
    (
        "namespace-not-default",
        "namespace unset",
        lambda s: find(s, "NetworkPolicy")["metadata"].pop("namespace"),
        "dev",
    ),
    (
        "service-account-not-default",
        "no serviceAccountName",
        lambda s: pod_template_of(find(s, "Deployment"))["spec"].pop("serviceAccountName"),
        "dev",
    ),
    (
        "service-account-not-default",
        "serviceAccountName default",
        pod_spec_set("serviceAccountName", "default", "StatefulSet"),
        "dev",
    ),
    (
        "secrets-from-secret-refs",
        "SecretStr setting as a plain value (catalogue)",
        set_env("DATABASE_URL", value="postgresql://db/users"),
        "dev",
    ),
    (
        "secrets-from-secret-refs",
        "secret-looking name from a ConfigMap",
        set_env("STRIPE_API_KEY", valueFrom={"configMapKeyRef": {"name": "cfg", "key": "k"}}),
        "dev",
    ),
    (
        "secrets-from-secret-refs",
        "URL with a password under an innocent name",
        set_env("UPSTREAM", value="https://bob:hunter2@example.com/"),
        "dev",
    ),
    (
        "secrets-from-secret-refs",
        "JWT_PRIVATE_KEY plain (users SecretStr)",
        set_env("JWT_PRIVATE_KEY", value="-----BEGIN PRIVATE KEY-----"),
        "dev",
    ),
    ("service-not-exposed", "LoadBalancer service", add_service("users-public", "LoadBalancer"), "dev"),
    ("service-not-exposed", "NodePort service", set_spec("Service", "type", "NodePort"), "dev"),
    (
        "recommended-labels",
        "missing part-of",
        lambda s: find(s, "Deployment")["metadata"]["labels"].pop("app.kubernetes.io/part-of"),
        "dev",
    ),
    (
        "service-account-token-not-automounted",
        "pod automounts (true)",
        pod_spec_set("automountServiceAccountToken", True),
        "dev",
    ),
    (
        "service-account-token-not-automounted",
        "pod unset, ServiceAccount does not disable it",
        lambda s: (
            pod_template_of(find(s, "Deployment"))["spec"].pop("automountServiceAccountToken"),
            find(s, "ServiceAccount", "users").pop("automountServiceAccountToken"),
        ),
        "dev",
    ),
    ("hpa-for-service-deployment", "HPA deleted", lambda s: remove(s, "HorizontalPodAutoscaler"), "dev"),
    (
        "hpa-target-exists",
        "HPA retargeted",
        lambda s: find(s, "HorizontalPodAutoscaler")["spec"]["scaleTargetRef"].__setitem__("name", "userz"),
        "dev",
    ),
    (
        "no-replicas-with-hpa",
        "replicas on an autoscaled Deployment",
        set_spec("Deployment", "replicas", 3.0),
        "dev",
    ),
    ("hpa-min-replicas", "prod HPA min 1", set_spec("HorizontalPodAutoscaler", "minReplicas", 1.0), "prod"),
    (
        "hpa-min-replicas",
        "prod HPA max < min",
        set_spec("HorizontalPodAutoscaler", "maxReplicas", 1.0),
        "prod",
    ),
    ("pdb-present", "PDB deleted", lambda s: remove(s, "PodDisruptionBudget"), "prod"),
    (
        "pdb-present",
        "PDB selects other pods",
        lambda s: find(s, "PodDisruptionBudget")["spec"]["selector"]["matchLabels"].__setitem__(
            "app.kubernetes.io/name", "orders"
        ),
        "prod",
    ),
    (
        "pdb-allows-disruption",
        "maxUnavailable 0",
        set_spec("PodDisruptionBudget", "maxUnavailable", 0.0),
        "prod",
    ),
    (
        "pdb-allows-disruption",
        "minAvailable == HPA min",
        lambda s: (
            find(s, "PodDisruptionBudget")["spec"].pop("maxUnavailable"),
            find(s, "PodDisruptionBudget")["spec"].__setitem__("minAvailable", 2.0),
        ),
        "prod",
    ),
    (
        "pdb-allows-disruption",
        "minAvailable 100%",
        lambda s: (
            find(s, "PodDisruptionBudget")["spec"].pop("maxUnavailable"),
            find(s, "PodDisruptionBudget")["spec"].__setitem__("minAvailable", "100%"),
        ),
        "prod",
    ),
    (
        "networkpolicy-covers-pods",
        "default-deny removed, postgres uncovered",
        lambda s: remove(s, "NetworkPolicy", "default-deny"),
        "dev",
    ),
    (
        "service-selects-pods",
        "selector typo",
        lambda s: find(s, "Service")["spec"]["selector"].__setitem__("app.kubernetes.io/name", "user"),
        "dev",
    ),
]

# (rule id, what is allowed, edit, environment): edge cases that must NOT be reported
PASSES = [
    ("egress-not-everywhere", "egress to the managed store's subnet", egress_to("10.40.0.0/24"), "prod"),
    ("egress-not-everywhere", "outside prod", egress_to("0.0.0.0/0"), "dev"),
    ("retained-data-protected", "retained and protected", retain_postgres(True, True), "dev"),
    ("retained-data-protected", "nothing retained (review stacks)", lambda s: None, "pr-42"),
    (
        "hpa-has-metrics-api",
        "the stack installs metrics-server",
        lambda s: (
            find(s, "Namespace")["metadata"]["labels"].pop(METRICS_API_LABEL),
            s.append(helm_release("metrics-server")),
        ),
        "prod",
    ),
    (
        "helm-release-pinned",
        "exact chart versions, v-prefixed or not",
        lambda s: s.extend([helm_release("cert-manager", "v1.21.2"), helm_release("traefik", "37.4.0")]),
        "prod",
    ),
    ("deployment-scraped", "monitoring on and the users Service scraped", monitoring("metrics"), "prod"),
    ("deployment-scraped", "monitoring off: nothing needs a ServiceMonitor", lambda s: None, "prod"),
    (
        "deployment-scraped",
        "a ServiceMonitor alone turns monitoring on, and it scrapes the Service",
        monitoring("metrics", namespace_label=False),
        "dev",
    ),
    (
        "service-account-exists",
        "the default ServiceAccount always exists (another rule reports it)",
        pod_spec_set("serviceAccountName", "default"),
        "dev",
    ),
    ("no-privileged", "privileged: false", set_security("privileged", False), "dev"),
    ("no-privilege-escalation", "compliant stack", lambda s: None, "dev"),
    (
        "run-as-non-root",
        "set on the pod only",
        lambda s: first_container(s)["securityContext"].pop("runAsNonRoot"),
        "dev",
    ),
    (
        "no-root-uid",
        "uid 10001 on the pod",
        pod_spec_set(
            "securityContext",
            {"runAsNonRoot": True, "runAsUser": 10001, "seccompProfile": {"type": "RuntimeDefault"}},
        ),
        "dev",
    ),
    (
        "drop-all-capabilities",
        "adds NET_BIND_SERVICE",
        set_security("capabilities", {"drop": ["ALL"], "add": ["NET_BIND_SERVICE"]}),
        "dev",
    ),
    (
        "seccomp-runtime-default",
        "Localhost profile on the container",
        set_security("seccompProfile", {"type": "Localhost", "localhostProfile": "p.json"}),
        "dev",
    ),
    ("no-host-namespaces", "hostNetwork false", pod_spec_set("hostNetwork", False), "dev"),
    ("no-host-ports", "containerPort only", lambda s: None, "dev"),
    (
        "no-host-path",
        "emptyDir + projected",
        add_volume({"name": "tok", "projected": {"sources": []}}),
        "dev",
    ),
    (
        "restricted-volume-types",
        "PVC + configMap + secret",
        lambda s: [
            add_volume({"name": v, k: {}})(s)
            for v, k in (("data", "persistentVolumeClaim"), ("cfg", "configMap"), ("sec", "secret"))
        ],
        "dev",
    ),
    ("read-only-root-filesystem", "compliant stack", lambda s: None, "dev"),
    ("probes-present", "Jobs and CronJobs need no probes", lambda s: None, "dev"),
    ("probes-distinct", "same path, different endpoints is fine", lambda s: None, "dev"),
    ("resource-requests", "compliant stack", lambda s: None, "dev"),
    ("memory-limit", "no CPU limit is fine", lambda s: None, "dev"),
    (
        "image-tag-pinned",
        "registry port + tag",
        lambda s: first_container(s).__setitem__("image", "registry:5000/users:1.0"),
        "dev",
    ),
    (
        "image-from-environment-registry",
        "dev pulls from dev's registry; third-party data store images are not service images",
        lambda s: first_container(s, "StatefulSet").__setitem__("image", "postgres:16-alpine"),
        "dev",
    ),
    (
        "image-digest-pinned",
        "tags are fine outside prod",
        lambda s: first_container(s).__setitem__("image", "registry:5000/users:1.0"),
        "dev",
    ),
    ("namespace-not-default", "cluster-scoped Namespace needs none", lambda s: None, "dev"),
    ("service-account-not-default", "own ServiceAccount", lambda s: None, "dev"),
    (
        "secrets-from-secret-refs",
        "JWT_PUBLIC_KEY, JWT_KEY_ID and *_TOKEN_TTL_SECONDS are not secrets",
        set_env("ADMIN_PASSWORD", valueFrom={"secretKeyRef": {"name": "users-env", "key": "ADMIN_PASSWORD"}}),
        "dev",
    ),
    (
        "service-not-exposed",
        "the ingress controller may be a LoadBalancer",
        add_service("ingress-nginx", "LoadBalancer", component="ingress-controller"),
        "dev",
    ),
    ("recommended-labels", "compliant stack", lambda s: None, "dev"),
    (
        "service-account-token-not-automounted",
        "pod unset, ServiceAccount disables it",
        lambda s: pod_template_of(find(s, "Deployment"))["spec"].pop("automountServiceAccountToken"),
        "dev",
    ),
    (
        "hpa-for-service-deployment",
        "non-catalogue Deployments need no HPA",
        lambda s: s.append(
            entry(
                "Deployment",
                "redis",
                {
                    "spec": {
                        "replicas": 1.0,
                        "template": {
                            "metadata": {"labels": {"app.kubernetes.io/name": "redis"}},
                            "spec": {"containers": []},
                        },
                    }
                },
            )
        ),
        "dev",
    ),
    ("hpa-target-exists", "compliant stack", lambda s: None, "dev"),
    ("no-replicas-with-hpa", "replicas without an HPA (StatefulSet)", lambda s: None, "dev"),
    (
        "no-replicas-with-hpa",
        "a live object (CrossGuard outputs) carries the replicas the HPA set",
        lambda s: find(s, "Deployment").update(
            spec=find(s, "Deployment")["spec"] | {"replicas": 4.0}, status={}
        ),
        "dev",
    ),
    (
        "hpa-min-replicas",
        "min 1 is fine outside prod",
        set_spec("HorizontalPodAutoscaler", "minReplicas", 1.0),
        "dev",
    ),
    (
        "pdb-present",
        "a matchExpressions selector covers the pods",
        set_spec(
            "PodDisruptionBudget",
            "selector",
            {"matchExpressions": [{"key": "app.kubernetes.io/name", "operator": "In", "values": ["users"]}]},
        ),
        "dev",
    ),
    (
        "pdb-allows-disruption",
        "minAvailable 1 < HPA min 2",
        lambda s: (
            find(s, "PodDisruptionBudget")["spec"].pop("maxUnavailable"),
            find(s, "PodDisruptionBudget")["spec"].__setitem__("minAvailable", 1.0),
        ),
        "prod",
    ),
    (
        "pdb-allows-disruption",
        "maxUnavailable 50%",
        set_spec("PodDisruptionBudget", "maxUnavailable", "50%"),
        "prod",
    ),
    (
        "networkpolicy-covers-pods",
        "default-deny covers everything even without the users policy",
        lambda s: remove(s, "NetworkPolicy", "users"),
        "dev",
    ),
    ("service-selects-pods", "compliant stack", lambda s: None, "dev"),
]


def case_id(case) -> str:
    return f"{case[0]}: {case[1]}"
