"""The small pieces the rules stand on: kinds from type tokens, environments from URNs, image references."""

from __future__ import annotations

import pytest

from commerce_platform.policy import Resource, environment_from_urn
from commerce_platform.policy.workloads import image_tag, looks_secret


@pytest.mark.parametrize(
    "type_token, kind",
    [
        ("kubernetes:apps/v1:Deployment", "Deployment"),
        ("kubernetes:networking.k8s.io/v1:NetworkPolicy", "NetworkPolicy"),
        ("kubernetes:core/v1:Pod", "Pod"),
        ("kubernetes:yaml/v2:ConfigGroup", None),  # component resources hold no object of their own
        ("kubernetes:helm.sh/v4:Chart", None),
        ("pulumi:providers:kubernetes", None),
        ("commerce-platform:app:ServiceDeployment", None),
    ],
)
def test_kind_comes_from_the_type_token(type_token, kind):
    assert Resource(type=type_token, name="x", props={}).kind == kind


@pytest.mark.parametrize(
    "urn, env",
    [
        ("urn:pulumi:prod::commerce-platform::kubernetes:apps/v1:Deployment::users-deployment", "prod"),
        (
            "urn:pulumi:pr-42::commerce-platform::commerce-platform:app:ServiceDeployment$kubernetes:core/v1:Service::s",
            "pr-42",
        ),
    ],
)
def test_environment_is_the_stack_in_the_urn(urn, env):
    assert environment_from_urn(urn) == env


def test_a_non_urn_is_rejected_in_one_line():
    with pytest.raises(ValueError, match="not a Pulumi URN"):
        environment_from_urn("users-deployment")


@pytest.mark.parametrize(
    "image, tag",
    [
        ("nginx", None),
        ("nginx:1.27", "1.27"),
        ("registry:5000/team/app", None),
        ("registry:5000/team/app:v2", "v2"),
        ("ghcr.io/x/app@sha256:" + "0" * 64, None),
        ("ghcr.io/x/app:1.0@sha256:" + "0" * 64, "1.0"),
    ],
)
def test_image_tag(image, tag):
    assert image_tag(image) == tag


@pytest.mark.parametrize(
    "name, secret",
    [
        ("DATABASE_PASSWORD", True),
        ("STRIPE_API_KEY", True),
        ("GITHUB_TOKEN", True),
        ("JWT_PUBLIC_KEY", False),
        ("JWT_KEY_ID", False),
        ("ACCESS_TOKEN_TTL_SECONDS", False),
        ("LOG_LEVEL", False),
    ],
)
def test_secret_looking_env_names(name, secret):
    assert looks_secret(name) is secret
