"""ClusterAddons: what the workloads need from the cluster, as pinned Helm releases (pulumi-kubernetes'
`helm.v3.Release`: one resource per release in the graph, its chart, version and values reviewable in `ops diff`).

- metrics-server: the metrics API every HorizontalPodAutoscaler reads (without it HPAs do nothing).
- Traefik: the ingress controller serving the environment's Ingress class (the ingress-nginx controller is
  retired).
- cert-manager: with an ACME Issuer in the namespace and the Certificate that creates the TLS Secret the Ingress
  names (stack setting tlsCertificate).

Each is switched per environment (environments/<env>.yaml `addons`, see environments.Addons): `release` installs
it here, `cluster` means the cluster has it (a managed offering, or dev's stack for the review stacks sharing its
cluster), `off` leaves it out. A Namespace label records the metrics API when the cluster provides it, so the
policy rule `hpa-has-metrics-api` can tell.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import pulumi

from commerce_platform.components.kube import KubeObject, manifest, provider_defaults
from commerce_platform.components.meta import TYPE_PREFIX, labels, metadata
from commerce_platform.environments import Environment

ISSUER_NAME = "acme"


@dataclass(frozen=True)
class Chart:
    name: str
    version: str  # exact: the policy rule `helm-release-pinned` refuses ranges and missing versions
    repo: str
    namespace: str


METRICS_SERVER = Chart(
    "metrics-server", "3.13.0", "https://kubernetes-sigs.github.io/metrics-server/", "kube-system"
)
TRAEFIK = Chart("traefik", "37.4.0", "https://traefik.github.io/charts", "traefik")
CERT_MANAGER = Chart("cert-manager", "v1.21.2", "https://charts.jetstack.io", "cert-manager")
CHARTS = (METRICS_SERVER, TRAEFIK, CERT_MANAGER)


class HelmRelease(pulumi.CustomResource):
    """pulumi-kubernetes' `helm.sh/v3:Release` (installed by the provider's Helm client), declared by its fields."""

    name: pulumi.Output[str]

    def __init__(self, resource_name: str, props: dict[str, Any], opts: pulumi.ResourceOptions):
        # compat: the provider's marker for this resource version, set by pulumi-kubernetes' own class too.
        release = {**props, "compat": "true", "status": None}
        super().__init__("kubernetes:helm.sh/v3:Release", resource_name, release, provider_defaults(opts))


class ClusterAddons(pulumi.ComponentResource):
    def __init__(
        self,
        name: str,
        env: Environment,
        namespace: pulumi.Input[str],
        opts: pulumi.ResourceOptions | None = None,
    ):
        super().__init__(f"{TYPE_PREFIX}:platform:ClusterAddons", name, None, opts)
        addons = env.spec.addons
        self.releases: dict[str, HelmRelease] = {}
        if addons.metrics_server == "release":
            self._release(
                METRICS_SERVER,
                METRICS_SERVER.namespace,
                {"args": ["--kubelet-preferred-address-types=InternalIP"]},
            )
        ingress = addons.ingress
        if ingress.mode == "release":
            ports: dict[str, Any] = {}
            for port, node_port in (("web", ingress.http_node_port), ("websecure", ingress.https_node_port)):
                if node_port is not None:
                    ports[port] = {"nodePort": node_port}
            self._release(
                TRAEFIK,
                env.stack.ingress_namespace,
                {
                    "ingressClass": {
                        "enabled": True,
                        "isDefaultClass": False,
                        "name": env.stack.ingress_class,
                    },
                    "providers": {
                        "kubernetesIngress": {"enabled": True},
                        "kubernetesCRD": {"enabled": False},
                    },
                    "service": {"type": ingress.service_type},
                    **({"ports": ports} if ports else {}),
                },
            )
        certs = addons.cert_manager
        if certs.mode == "release":
            self._release(CERT_MANAGER, CERT_MANAGER.namespace, {"crds": {"enabled": True}})
        if certs.mode != "off" and env.stack.tls_certificate:
            self._certificate(env, namespace)
        self.register_outputs({"releases": {k: r.name for k, r in self.releases.items()}})

    def _release(self, chart: Chart, namespace: str, values: dict[str, Any]) -> None:
        self.releases[chart.name] = HelmRelease(
            f"{chart.name}-release",
            {
                "name": chart.name,
                "chart": chart.name,
                "version": chart.version,
                "repositoryOpts": {"repo": chart.repo},
                "namespace": namespace,
                "createNamespace": True,
                "atomic": True,  # a failed install or upgrade is rolled back, not left half-applied
                "values": values,
            },
            pulumi.ResourceOptions(parent=self),
        )

    def _certificate(self, env: Environment, namespace: pulumi.Input[str]) -> None:
        stack, certs = env.stack, env.spec.addons.cert_manager
        tls_labels = labels("commerce-platform", f"commerce-{env.name}", "tls")
        after = [r for k, r in self.releases.items() if k == CERT_MANAGER.name]
        opts = pulumi.ResourceOptions(parent=self, depends_on=after)
        issuer = KubeObject(
            "tls-issuer",
            manifest(
                "cert-manager.io/v1",
                "Issuer",
                metadata(ISSUER_NAME, namespace, tls_labels),
                spec={
                    "acme": {
                        "server": certs.acme_server,
                        "email": certs.acme_email,
                        "privateKeySecretRef": {"name": f"{ISSUER_NAME}-account-key"},
                        "solvers": [{"http01": {"ingress": {"ingressClassName": stack.ingress_class}}}],
                    }
                },
            ),
            opts,
        )
        KubeObject(
            "tls-certificate",
            manifest(
                "cert-manager.io/v1",
                "Certificate",
                metadata(stack.tls_certificate, namespace, tls_labels),
                spec={
                    "secretName": stack.tls_certificate,
                    "dnsNames": [stack.domain],
                    "issuerRef": {"name": ISSUER_NAME, "kind": "Issuer"},
                },
            ),
            pulumi.ResourceOptions(parent=self, depends_on=[issuer, *after]),
        )
