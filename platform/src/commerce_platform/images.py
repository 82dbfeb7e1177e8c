"""Service images: built from services/<name>/Dockerfile, or a pinned `repo@sha256:` digest."""

from __future__ import annotations

from typing import TYPE_CHECKING

import pulumi

from commerce_platform import catalogue
from commerce_platform.environments import Environment

if TYPE_CHECKING:
    import pulumi_docker as docker

# Pulumi runs the program with the `main` directory (platform/) as working directory; the build context is the
# repo root because every Dockerfile copies the shared service kit as well as its own service.
BUILD_CONTEXT = ".."


def service_image(
    env: Environment, spec: catalogue.ServiceSpec, opts: pulumi.ResourceOptions
) -> tuple[pulumi.Output[str], docker.Image | None]:
    """The image reference a Deployment runs (always by digest), and the Image resource when it is built."""
    release = env.spec.services[spec.name].release
    if not env.spec.services[spec.name].builds:
        return pulumi.Output.from_input(release), None
    # Imported here: only a building environment needs the Docker provider's SDK (a quarter second to import).
    import pulumi_docker as docker

    image = docker.Image(
        f"{spec.name}-image",
        image_name=f"{env.spec.image_repository}/{spec.name}:{env.name}",
        build=docker.DockerBuildArgs(
            context=BUILD_CONTEXT,
            dockerfile=f"{BUILD_CONTEXT}/services/{spec.name}/Dockerfile",
            platform="linux/amd64",
        ),
        opts=opts,
    )
    # The pushed digest, so pods never run a mutable tag even in dev.
    return image.repo_digest, image
