"""PublicIngress: routes the catalogue's public prefixes to their services."""

from __future__ import annotations

import pulumi

from commerce_platform import catalogue
from commerce_platform.components.kube import KubeObject, fields, manifest
from commerce_platform.components.meta import TYPE_PREFIX, labels, metadata
from commerce_platform.environments import Environment


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
            [{"hosts": [stack.domain], "secretName": stack.tls_certificate}]
            if stack.tls_certificate
            else None
        )
        self.ingress = KubeObject(
            "public-ingress",
            manifest(
                "networking.k8s.io/v1",
                "Ingress",
                metadata("public", namespace, labels("commerce-platform", f"commerce-{env.name}", "ingress")),
                spec=fields(
                    ingressClassName=stack.ingress_class,
                    tls=tls,
                    rules=[
                        {
                            "host": stack.domain,
                            "http": {
                                "paths": [
                                    {
                                        "path": prefix,
                                        "pathType": "Prefix",
                                        "backend": {"service": {"name": s.name, "port": {"number": s.port}}},
                                    }
                                    for prefix, s in paths
                                ]
                            },
                        }
                    ],
                ),
            ),
            pulumi.ResourceOptions(parent=self, depends_on=backends),
        )
        self.url = pulumi.Output.from_input(f"{'https' if tls else 'http'}://{stack.domain}")
        self.register_outputs({"url": self.url})
