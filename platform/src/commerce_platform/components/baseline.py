"""ClusterBaseline: the environment's namespace, its budget and its network rules."""

from __future__ import annotations

import pulumi

from commerce_platform import catalogue
from commerce_platform.components.kube import KubeObject, Manifest, fields, manifest
from commerce_platform.components.meta import TYPE_PREFIX, labels, match, metadata
from commerce_platform.environments import Environment, Postgres, Quota, Redis
from commerce_platform.service_env import token_issuer

POSTGRES_CLIENT = "commerce-platform/postgres-client"
REDIS_CLIENT = "commerce-platform/redis-client"
POSTGRES_PORT = 5432
REDIS_PORTS = (6379, 6380)  # 6380: the usual TLS port of managed Redis


def service_pods(name: str) -> dict[str, str]:
    return {"app.kubernetes.io/name": name, "app.kubernetes.io/component": "api"}


def retains_data(env: Environment) -> bool:
    """The environment keeps data in the cluster across destroys (in-cluster Postgres with retain_volume)."""
    return env.spec.postgres.mode == "in-cluster" and env.spec.postgres.retain_volume


def call_edges(services: tuple[catalogue.ServiceSpec, ...]) -> list[tuple[str, str]]:
    """(caller, callee) pairs: the catalogue's calls plus every verifier fetching the issuer's JWKS."""
    issuer = token_issuer(services).name
    edges = {(s.name, callee) for s in services for callee in s.calls}
    edges |= {(s.name, issuer) for s in services if s.name != issuer and "JWT_JWKS_URL" in s.env_var_names}
    return sorted(edges)


def tcp(*ports: int) -> list[Manifest]:
    return [{"port": port, "protocol": "TCP"} for port in ports]


def pods_of(pod_labels: dict[str, str]) -> Manifest:
    return {"podSelector": match(pod_labels)}


def namespace_of(namespace: str, pod_labels: dict[str, str] | None = None) -> Manifest:
    """Every pod of a namespace, or (with `pod_labels`) only those pods in it."""
    return fields(
        namespaceSelector=match({"kubernetes.io/metadata.name": namespace}),
        podSelector=match(pod_labels) if pod_labels else None,
    )


def allow(pods: Manifest, direction: str, peers: list[Manifest], ports: list[Manifest]) -> Manifest:
    """One allow edge (a NetworkPolicy spec): `pods` may receive from (Ingress) or send to (Egress) `peers` on
    `ports`."""
    rule = {"from" if direction == "Ingress" else "to": peers, "ports": ports}
    return {"podSelector": pods, "policyTypes": [direction], direction.lower(): [rule]}


def data_store_edges(
    store: str, client_label: str, ports: tuple[int, ...], spec: Postgres | Redis
) -> dict[str, Manifest]:
    """Clients (pods labelled `client_label`) to the store: its pods in the cluster, else its networks."""
    clients, store_pods = {client_label: "true"}, {"app.kubernetes.io/name": store}
    edges = {}
    if spec.mode == "in-cluster":
        edges[f"{store}-from-clients"] = allow(match(store_pods), "Ingress", [pods_of(clients)], tcp(*ports))
        peers = [pods_of(store_pods)]
    else:
        # A managed store sits outside the cluster: its networks (environments/<env>.yaml cidrs), its ports.
        peers = [{"ipBlock": {"cidr": cidr}} for cidr in spec.cidrs]
    return {**edges, f"{store}-clients-egress": allow(match(clients), "Egress", peers, tcp(*ports))}


def network_policies(env: Environment, services: tuple[catalogue.ServiceSpec, ...]) -> dict[str, Manifest]:
    """Deny everything, then allow each edge: DNS, the ingress controller, every call, the scrapes, the stores."""
    everything: Manifest = {}
    dns = namespace_of("kube-system", {"k8s-app": "kube-dns"})
    dns_ports = [{"port": 53, "protocol": p} for p in ("UDP", "TCP")]
    policies = {
        "default-deny": {"podSelector": everything, "policyTypes": ["Ingress", "Egress"]},
        "allow-dns-egress": allow(everything, "Egress", [dns], dns_ports),
    }
    by_name = {s.name: s for s in services}
    for s in services:
        if s.public_prefixes:
            ingress = namespace_of(env.stack.ingress_namespace)
            policies[f"{s.name}-from-ingress"] = allow(
                match(service_pods(s.name)), "Ingress", [ingress], tcp(s.port)
            )
    for caller, callee in call_edges(services):
        port = tcp(by_name[callee].port)
        policies[f"{callee}-from-{caller}"] = allow(
            match(service_pods(callee)), "Ingress", [pods_of(service_pods(caller))], port
        )
        policies[f"{caller}-to-{callee}"] = allow(
            match(service_pods(caller)), "Egress", [pods_of(service_pods(callee))], port
        )
    if env.spec.monitoring.enabled:
        scraper = namespace_of(env.spec.monitoring.namespace)
        for s in services:  # Prometheus scrapes the metrics port only, never the API
            policies[f"{s.name}-metrics-from-monitoring"] = allow(
                match(service_pods(s.name)), "Ingress", [scraper], tcp(s.metrics_port)
            )
    redis_ports = REDIS_PORTS[:1] if env.spec.redis.mode == "in-cluster" else REDIS_PORTS
    policies |= data_store_edges("postgres", POSTGRES_CLIENT, (POSTGRES_PORT,), env.spec.postgres)
    policies |= data_store_edges("redis", REDIS_CLIENT, redis_ports, env.spec.redis)
    return policies


def namespace_labels(env: Environment) -> dict[str, str]:
    """Restricted Pod Security, enforced at the cluster's version; what monitoring and the HPA rule look for."""
    version = f"v{env.stack.k8s_version}"
    return {
        **labels("commerce-platform", f"commerce-{env.name}", "baseline"),
        **{f"pod-security.kubernetes.io/{mode}": "restricted" for mode in ("enforce", "audit", "warn")},
        **{f"pod-security.kubernetes.io/{mode}-version": version for mode in ("enforce", "audit", "warn")},
        **({catalogue.MONITORING_LABEL: "enabled"} if env.spec.monitoring.enabled else {}),
        **({catalogue.METRICS_API_LABEL: "cluster"} if env.spec.addons.metrics_server == "cluster" else {}),
    }


def quota_spec(quota: Quota) -> Manifest:
    return {
        "hard": {
            "requests.cpu": quota.cpu,
            "requests.memory": quota.memory,
            "limits.memory": quota.memory,
            "pods": str(quota.pods),
        }
    }


def limit_range_spec() -> Manifest:
    """Defaults for a container that states no resources (every container here states them)."""
    return {
        "limits": [
            {
                "type": "Container",
                "defaultRequest": {"cpu": "100m", "memory": "128Mi"},
                "default": {"memory": "256Mi"},
                "max": {"memory": "4Gi"},
            }
        ]
    }


class ClusterBaseline(pulumi.ComponentResource):
    """The Namespace, its ResourceQuota and LimitRange, and its NetworkPolicies (by name in `network_policies`)."""

    namespace: pulumi.Output[str]

    def __init__(
        self,
        name: str,
        env: Environment,
        services: tuple[catalogue.ServiceSpec, ...],
        opts: pulumi.ResourceOptions | None = None,
    ):
        super().__init__(f"{TYPE_PREFIX}:platform:ClusterBaseline", name, None, opts)
        own = labels("commerce-platform", f"commerce-{env.name}", "baseline")
        self.namespace_object = KubeObject(
            "namespace",
            manifest("v1", "Namespace", metadata(env.stack.namespace, None, namespace_labels(env))),
            # Deleting the Namespace deletes every PersistentVolumeClaim in it: protected where data is retained
            # (`pulumi state unprotect` first to really destroy such an environment).
            opts=pulumi.ResourceOptions(parent=self, protect=retains_data(env)),
        )
        self.namespace = self.namespace_object.metadata["name"]
        in_namespace = pulumi.ResourceOptions(parent=self, depends_on=[self.namespace_object])
        self.quota = KubeObject(
            "quota",
            manifest(
                "v1",
                "ResourceQuota",
                metadata("compute-quota", self.namespace, own),
                spec=quota_spec(env.spec.quota),
            ),
            in_namespace,
        )
        self.limits = KubeObject(
            "limits",
            manifest(
                "v1",
                "LimitRange",
                metadata("container-defaults", self.namespace, own),
                spec=limit_range_spec(),
            ),
            in_namespace,
        )
        self.network_policies = {
            policy: KubeObject(
                f"netpol-{policy}",
                manifest(
                    "networking.k8s.io/v1", "NetworkPolicy", metadata(policy, self.namespace, own), spec=spec
                ),
                in_namespace,
            )
            for policy, spec in network_policies(env, services).items()
        }
        self.register_outputs({"namespace": self.namespace})
