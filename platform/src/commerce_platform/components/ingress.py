"""PublicIngress: routes the catalogue's public prefixes to their services."""

from __future__ import annotations

import pulumi
import pulumi_kubernetes as k8s

from commerce_platform import catalogue
from commerce_platform.components.meta import TYPE_PREFIX, labels, metadata
from commerce_platform.environments import Environment

net = k8s.networking.v1


class PublicIngress(pulumi.ComponentResource):
    url: pulumi.Output[str]

    def __init__(
        self,
        name: str,
        env: Environment,
        namespace: pulumi.Input[str],
        services: tuple[catalogue.ServiceSpec, ...],
        backends: list[pulumi.Resource],
        opts: pulumi.ResourceOptions | None = None,
    ):
        super().__init__(f"{TYPE_PREFIX}:app:PublicIngress", name, None, opts)
        stack = env.stack
        paths = sorted((prefix, s) for s in services for prefix in s.public_prefixes)
        tls = (
            [net.IngressTLSArgs(hosts=[stack.domain], secret_name=stack.tls_certificate)]
            if stack.tls_certificate
            else None
        )
        net.Ingress(
            "public-ingress",
            metadata=metadata(
                "public", namespace, labels("commerce-platform", f"commerce-{env.name}", "ingress")
            ),
            spec=net.IngressSpecArgs(
                ingress_class_name=stack.ingress_class,
                tls=tls,
                rules=[
                    net.IngressRuleArgs(
                        host=stack.domain,
                        http=net.HTTPIngressRuleValueArgs(
                            paths=[
                                net.HTTPIngressPathArgs(
                                    path=prefix,
                                    path_type="Prefix",
                                    backend=net.IngressBackendArgs(
                                        service=net.IngressServiceBackendArgs(
                                            name=s.name, port=net.ServiceBackendPortArgs(number=s.port)
                                        )
                                    ),
                                )
                                for prefix, s in paths
                            ]
                        ),
                    )
                ],
            ),
            opts=pulumi.ResourceOptions(parent=self, depends_on=backends),
        )
        self.url = pulumi.Output.from_input(f"{'https' if tls else 'http'}://{stack.domain}")
        self.register_outputs({"url": self.url})
