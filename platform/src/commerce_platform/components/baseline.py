"""ClusterBaseline: the environment's namespace, its budget and its network rules."""

from __future__ import annotations

import pulumi
import pulumi_kubernetes as k8s

from commerce_platform import catalogue
from commerce_platform.components.meta import TYPE_PREFIX, labels, match, metadata
from commerce_platform.environments import Environment, Postgres, Quota, Redis
from commerce_platform.service_env import token_issuer

POSTGRES_CLIENT = "commerce-platform/postgres-client"
REDIS_CLIENT = "commerce-platform/redis-client"
POSTGRES_PORT = 5432
REDIS_PORTS = (6379, 6380)  # 6380: the usual TLS port of managed Redis

npv1 = k8s.networking.v1


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


def tcp(*ports: int) -> list[npv1.NetworkPolicyPortArgs]:
    return [npv1.NetworkPolicyPortArgs(port=port, protocol="TCP") for port in ports]


def pods_of(pod_labels: dict[str, str]) -> npv1.NetworkPolicyPeerArgs:
    return npv1.NetworkPolicyPeerArgs(pod_selector=match(pod_labels))


def namespace_of(namespace: str, pod_labels: dict[str, str] | None = None) -> npv1.NetworkPolicyPeerArgs:
    """Every pod of a namespace, or (with `pod_labels`) only those pods in it."""
    return npv1.NetworkPolicyPeerArgs(
        namespace_selector=match({"kubernetes.io/metadata.name": namespace}),
        pod_selector=match(pod_labels) if pod_labels else None,
    )


def allow(
    pods: k8s.meta.v1.LabelSelectorArgs,
    direction: str,
    peers: list[npv1.NetworkPolicyPeerArgs],
    ports: list[npv1.NetworkPolicyPortArgs],
) -> npv1.NetworkPolicySpecArgs:
    """One allow edge: `pods` may receive from (Ingress) or send to (Egress) `peers` on `ports`."""
    if direction == "Ingress":
        rules = {"ingress": [npv1.NetworkPolicyIngressRuleArgs(from_=peers, ports=ports)]}
    else:
        rules = {"egress": [npv1.NetworkPolicyEgressRuleArgs(to=peers, ports=ports)]}
    return npv1.NetworkPolicySpecArgs(pod_selector=pods, policy_types=[direction], **rules)


def data_store_edges(
    store: str, client_label: str, ports: tuple[int, ...], spec: Postgres | Redis
) -> dict[str, npv1.NetworkPolicySpecArgs]:
    """Clients (pods labelled `client_label`) to the store: its pods in the cluster, else its networks."""
    clients, store_pods = {client_label: "true"}, {"app.kubernetes.io/name": store}
    edges = {}
    if spec.mode == "in-cluster":
        edges[f"{store}-from-clients"] = allow(match(store_pods), "Ingress", [pods_of(clients)], tcp(*ports))
        peers = [pods_of(store_pods)]
    else:
        # A managed store sits outside the cluster: its networks (environments/<env>.yaml cidrs), its ports.
        peers = [npv1.NetworkPolicyPeerArgs(ip_block=npv1.IPBlockArgs(cidr=cidr)) for cidr in spec.cidrs]
    return {**edges, f"{store}-clients-egress": allow(match(clients), "Egress", peers, tcp(*ports))}


def network_policies(
    env: Environment, services: tuple[catalogue.ServiceSpec, ...]
) -> dict[str, npv1.NetworkPolicySpecArgs]:
    """Deny everything, then allow each edge: DNS, the ingress controller, every call, the scrapes, the stores."""
    everything = k8s.meta.v1.LabelSelectorArgs()
    dns = namespace_of("kube-system", {"k8s-app": "kube-dns"})
    dns_ports = [npv1.NetworkPolicyPortArgs(port=53, protocol=p) for p in ("UDP", "TCP")]
    policies = {
        "default-deny": npv1.NetworkPolicySpecArgs(
            pod_selector=everything, policy_types=["Ingress", "Egress"]
        ),
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


def quota_spec(quota: Quota) -> k8s.core.v1.ResourceQuotaSpecArgs:
    return k8s.core.v1.ResourceQuotaSpecArgs(
        hard={
            "requests.cpu": quota.cpu,
            "requests.memory": quota.memory,
            "limits.memory": quota.memory,
            "pods": str(quota.pods),
        }
    )


def limit_range_spec() -> k8s.core.v1.LimitRangeSpecArgs:
    """Defaults for a container that states no resources (every container here states them)."""
    return k8s.core.v1.LimitRangeSpecArgs(
        limits=[
            k8s.core.v1.LimitRangeItemArgs(
                type="Container",
                default_request={"cpu": "100m", "memory": "128Mi"},
                default={"memory": "256Mi"},
                max={"memory": "4Gi"},
            )
        ]
    )


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
        self.namespace_object = k8s.core.v1.Namespace(
            "namespace",
            metadata=metadata(env.stack.namespace, None, namespace_labels(env)),
            # Deleting the Namespace deletes every PersistentVolumeClaim in it: protected where data is retained
            # (`pulumi state unprotect` first to really destroy such an environment).
            opts=pulumi.ResourceOptions(parent=self, protect=retains_data(env)),
        )
        self.namespace = self.namespace_object.metadata.name
        in_namespace = pulumi.ResourceOptions(parent=self, depends_on=[self.namespace_object])
        self.quota = k8s.core.v1.ResourceQuota(
            "quota",
            metadata=metadata("compute-quota", self.namespace, own),
            spec=quota_spec(env.spec.quota),
            opts=in_namespace,
        )
        self.limits = k8s.core.v1.LimitRange(
            "limits",
            metadata=metadata("container-defaults", self.namespace, own),
            spec=limit_range_spec(),
            opts=in_namespace,
        )
        self.network_policies = {
            policy: npv1.NetworkPolicy(
                f"netpol-{policy}",
                metadata=metadata(policy, self.namespace, own),
                spec=spec,
                opts=in_namespace,
            )
            for policy, spec in network_policies(env, services).items()
        }
        self.register_outputs({"namespace": self.namespace})
