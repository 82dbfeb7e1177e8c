"""Kubernetes objects declared as the manifests they are.

Every object the components declare is written as its manifest - apiVersion, kind, metadata and the kind's own
fields, camelCase as the API and `kubectl get -o yaml` spell them - and registered through `KubeObject` under the
type token the Kubernetes provider gives that kind (`kubernetes:<group>/<version>:<Kind>`, the core group as `core`).
The provider receives what pulumi-kubernetes' generated classes would send (same token, same properties, same
resource options, a Secret's data kept secret the same way), and the render checks every manifest strictly against
the Kubernetes schema (commerce_ops.render.manifests), which catches a misspelt field as the generated classes'
keyword arguments would.

Why not the generated classes: importing them (tens of thousands of lines of typed argument classes per API group)
and translating their arguments was half of a render's CPU time (BENCHMARKS.md, "Render: manifests as
dicts"). `pulumi_kubernetes` itself is still imported, light, for its Provider and resource defaults.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import pulumi
from pulumi_kubernetes import _utilities

Manifest = dict[str, Any]

# A Secret's values: secret in the state, in previews and in the program's outputs (as pulumi-kubernetes' Secret).
SECRET_FIELDS = ("data", "stringData")


def type_token(api_version: str, kind: str) -> str:
    """`v1`/Secret -> `kubernetes:core/v1:Secret`; `apps/v1`/Deployment -> `kubernetes:apps/v1:Deployment`."""
    group_version = api_version if "/" in api_version else f"core/{api_version}"
    return f"kubernetes:{group_version}:{kind}"


def provider_defaults(opts: pulumi.ResourceOptions | None) -> pulumi.ResourceOptions:
    """The resource options pulumi-kubernetes' own classes start from (its plugin version)."""
    return pulumi.ResourceOptions.merge(_utilities.get_resource_opts_defaults(), opts)


class KubeObject(pulumi.CustomResource):
    """One Kubernetes object; its manifest's top-level fields are its outputs (`obj.metadata["name"]`)."""

    metadata: pulumi.Output[Manifest]

    def __init__(
        self, resource_name: str, definition: Mapping[str, Any], opts: pulumi.ResourceOptions | None = None
    ):
        props = {key: value for key, value in definition.items() if value is not None}
        opts = provider_defaults(opts)
        if definition["kind"] == "Secret" and definition["apiVersion"] == "v1":
            for key in SECRET_FIELDS:
                if key in props:
                    props[key] = pulumi.Output.secret(props[key])
            opts = pulumi.ResourceOptions.merge(
                opts, pulumi.ResourceOptions(additional_secret_outputs=list(SECRET_FIELDS))
            )
        super().__init__(type_token(definition["apiVersion"], definition["kind"]), resource_name, props, opts)


def manifest(api_version: str, kind: str, metadata: Manifest, **body: Any) -> Manifest:
    """An object's manifest: apiVersion, kind, metadata, then the kind's own fields (unset ones left out)."""
    return {"apiVersion": api_version, "kind": kind, "metadata": metadata, **fields(**body)}


def fields(**values: Any) -> Manifest:
    """A manifest fragment without its unset (None) fields: `fields(minDomains=None, maxSkew=1)` -> {maxSkew: 1}."""
    return {key: value for key, value in values.items() if value is not None}
