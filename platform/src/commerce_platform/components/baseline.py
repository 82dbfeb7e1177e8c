"""ClusterBaseline: the environment's namespace, its budget and its network rules."""

from __future__ import annotations

import pulumi
import pulumi_kubernetes as k8s

from commerce_platform import catalogue
from commerce_platform.components.meta import TYPE_PREFIX, labels, metadata
from commerce_platform.environments import Environment, Postgres, Redis
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


class ClusterBaseline(pulumi.ComponentResource):
    namespace: pulumi.Output[str]

    def __init__(
        self,
        name: str,
        env: Environment,
        services: tuple[catalogue.ServiceSpec, ...],
        opts: pulumi.ResourceOptions | None = None,
    ):
        super().__init__(f"{TYPE_PREFIX}:platform:ClusterBaseline", name, None, opts)
        self._env = env
        self._labels = labels("commerce-platform", f"commerce-{env.name}", "baseline")
        version = f"v{env.stack.k8s_version}"
        ns = k8s.core.v1.Namespace(
            "namespace",
            metadata=metadata(
                env.stack.namespace,
                None,
                {
                    **self._labels,
                    "pod-security.kubernetes.io/enforce": "restricted",
                    "pod-security.kubernetes.io/enforce-version": version,
                    "pod-security.kubernetes.io/audit": "restricted",
                    "pod-security.kubernetes.io/audit-version": version,
                    "pod-security.kubernetes.io/warn": "restricted",
                    "pod-security.kubernetes.io/warn-version": version,
                    **({catalogue.MONITORING_LABEL: "enabled"} if env.spec.monitoring.enabled else {}),
                    **(
                        {catalogue.METRICS_API_LABEL: "cluster"}
                        if env.spec.addons.metrics_server == "cluster"
                        else {}
                    ),
                },
            ),
            # Deleting the Namespace deletes every PersistentVolumeClaim in it: protected where data is retained
            # (`pulumi state unprotect` first to really destroy such an environment).
            opts=pulumi.ResourceOptions(parent=self, protect=retains_data(env)),
        )
        self.namespace = ns.metadata.name
        self._ns_opts = pulumi.ResourceOptions(parent=self, depends_on=[ns])

        quota = env.spec.quota
        k8s.core.v1.ResourceQuota(
            "quota",
            metadata=self._meta("compute-quota"),
            spec=k8s.core.v1.ResourceQuotaSpecArgs(
                hard={
                    "requests.cpu": quota.cpu,
                    "requests.memory": quota.memory,
                    "limits.memory": quota.memory,
                    "pods": str(quota.pods),
                }
            ),
            opts=self._ns_opts,
        )
        k8s.core.v1.LimitRange(
            "limits",
            metadata=self._meta("container-defaults"),
            spec=k8s.core.v1.LimitRangeSpecArgs(
                limits=[
                    k8s.core.v1.LimitRangeItemArgs(
                        type="Container",
                        default_request={"cpu": "100m", "memory": "128Mi"},
                        default={"memory": "256Mi"},
                        max={"memory": "4Gi"},
                    )
                ]
            ),
            opts=self._ns_opts,
        )
        self._network_policies(services)
        self.register_outputs({"namespace": self.namespace})

    def _meta(self, name: str) -> k8s.meta.v1.ObjectMetaArgs:
        return metadata(name, self.namespace, self._labels)

    def _policy(self, name: str, spec: npv1.NetworkPolicySpecArgs) -> None:
        npv1.NetworkPolicy(f"netpol-{name}", metadata=self._meta(name), spec=spec, opts=self._ns_opts)

    def _from_namespace(self, name: str, service: str, namespace: str, port: int) -> None:
        """Admit every pod of another namespace to one port of a service's pods."""
        self._policy(
            name,
            npv1.NetworkPolicySpecArgs(
                pod_selector=k8s.meta.v1.LabelSelectorArgs(match_labels=service_pods(service)),
                policy_types=["Ingress"],
                ingress=[
                    npv1.NetworkPolicyIngressRuleArgs(
                        from_=[
                            npv1.NetworkPolicyPeerArgs(
                                namespace_selector=k8s.meta.v1.LabelSelectorArgs(
                                    match_labels={"kubernetes.io/metadata.name": namespace}
                                )
                            )
                        ],
                        ports=[npv1.NetworkPolicyPortArgs(port=port, protocol="TCP")],
                    )
                ],
            ),
        )

    def _network_policies(self, services: tuple[catalogue.ServiceSpec, ...]) -> None:
        env = self._env
        self._policy(
            "default-deny",
            npv1.NetworkPolicySpecArgs(
                pod_selector=k8s.meta.v1.LabelSelectorArgs(), policy_types=["Ingress", "Egress"]
            ),
        )
        self._policy(
            "allow-dns-egress",
            npv1.NetworkPolicySpecArgs(
                pod_selector=k8s.meta.v1.LabelSelectorArgs(),
                policy_types=["Egress"],
                egress=[
                    npv1.NetworkPolicyEgressRuleArgs(
                        to=[
                            npv1.NetworkPolicyPeerArgs(
                                namespace_selector=k8s.meta.v1.LabelSelectorArgs(
                                    match_labels={"kubernetes.io/metadata.name": "kube-system"}
                                ),
                                pod_selector=k8s.meta.v1.LabelSelectorArgs(
                                    match_labels={"k8s-app": "kube-dns"}
                                ),
                            )
                        ],
                        ports=[npv1.NetworkPolicyPortArgs(port=53, protocol=p) for p in ("UDP", "TCP")],
                    )
                ],
            ),
        )
        by_name = {s.name: s for s in services}
        for s in services:
            if s.public_prefixes:
                self._from_namespace(f"{s.name}-from-ingress", s.name, env.stack.ingress_namespace, s.port)
        for caller, callee in call_edges(services):
            port = [npv1.NetworkPolicyPortArgs(port=by_name[callee].port, protocol="TCP")]
            self._policy(
                f"{callee}-from-{caller}",
                npv1.NetworkPolicySpecArgs(
                    pod_selector=k8s.meta.v1.LabelSelectorArgs(match_labels=service_pods(callee)),
                    policy_types=["Ingress"],
                    ingress=[
                        npv1.NetworkPolicyIngressRuleArgs(
                            from_=[
                                npv1.NetworkPolicyPeerArgs(
                                    pod_selector=k8s.meta.v1.LabelSelectorArgs(
                                        match_labels=service_pods(caller)
                                    )
                                )
                            ],
                            ports=port,
                        )
                    ],
                ),
            )
            self._policy(
                f"{caller}-to-{callee}",
                npv1.NetworkPolicySpecArgs(
                    pod_selector=k8s.meta.v1.LabelSelectorArgs(match_labels=service_pods(caller)),
                    policy_types=["Egress"],
                    egress=[
                        npv1.NetworkPolicyEgressRuleArgs(
                            to=[
                                npv1.NetworkPolicyPeerArgs(
                                    pod_selector=k8s.meta.v1.LabelSelectorArgs(
                                        match_labels=service_pods(callee)
                                    )
                                )
                            ],
                            ports=port,
                        )
                    ],
                ),
            )
        if env.spec.monitoring.enabled:
            for s in services:  # Prometheus scrapes the metrics port only, never the API
                self._from_namespace(
                    f"{s.name}-metrics-from-monitoring", s.name, env.spec.monitoring.namespace, s.metrics_port
                )
        self._data_store_policies("postgres", POSTGRES_CLIENT, (POSTGRES_PORT,), env.spec.postgres)
        self._data_store_policies(
            "redis",
            REDIS_CLIENT,
            REDIS_PORTS[:1] if env.spec.redis.mode == "in-cluster" else REDIS_PORTS,
            env.spec.redis,
        )

    def _data_store_policies(
        self, store: str, client_label: str, ports: tuple[int, ...], spec: Postgres | Redis
    ) -> None:
        mode = spec.mode
        clients = k8s.meta.v1.LabelSelectorArgs(match_labels={client_label: "true"})
        store_pods = k8s.meta.v1.LabelSelectorArgs(match_labels={"app.kubernetes.io/name": store})
        np_ports = [npv1.NetworkPolicyPortArgs(port=p, protocol="TCP") for p in ports]
        if mode == "in-cluster":
            self._policy(
                f"{store}-from-clients",
                npv1.NetworkPolicySpecArgs(
                    pod_selector=store_pods,
                    policy_types=["Ingress"],
                    ingress=[
                        npv1.NetworkPolicyIngressRuleArgs(
                            from_=[npv1.NetworkPolicyPeerArgs(pod_selector=clients)], ports=np_ports
                        )
                    ],
                ),
            )
            peers = [npv1.NetworkPolicyPeerArgs(pod_selector=store_pods)]
        else:
            # A managed store sits outside the cluster: its networks (environments/<env>.yaml cidrs), its ports.
            peers = [npv1.NetworkPolicyPeerArgs(ip_block=npv1.IPBlockArgs(cidr=cidr)) for cidr in spec.cidrs]
        self._policy(
            f"{store}-clients-egress",
            npv1.NetworkPolicySpecArgs(
                pod_selector=clients,
                policy_types=["Egress"],
                egress=[npv1.NetworkPolicyEgressRuleArgs(to=peers, ports=np_ports)],
            ),
        )
