"""Forged and broken tokens get 401 on every protected route of every service.

The routes are not hand-picked: they are every operation in each service's OpenAPI schema that requires the bearer
scheme. A valid token is tried on each route
too, so a 401 below is about the token, not the route.
"""

from __future__ import annotations

import base64
import functools
import hashlib
import hmac
import importlib
import json
import time
import uuid
from collections.abc import Callable
from typing import Any

import httpx
import pytest
from harness import JWT_AUDIENCE, JWT_ISSUER, KeyPair, ServiceStack
from jose import jwt

from commerce_platform import catalogue

pytestmark = pytest.mark.heavy(25)


def _path_value(parameter: dict[str, Any]) -> str:
    schema = parameter.get("schema", {})
    if schema.get("format") == "uuid":
        return "00000000-0000-4000-8000-000000000001"  # fixed, so test ids are stable
    return "1"  # integer ids and strings alike


def protected_routes() -> list[tuple[str, str, str]]:
    """(service, method, concrete path) for every operation whose OpenAPI entry requires the bearer scheme.

    The kit's bearer dependency (used by CurrentPrincipal and AdminPrincipal) is what puts `security` on an
    operation, so this lists exactly the routes that authenticate.
    """
    found = []
    for spec in catalogue.SERVICES:
        schema = importlib.import_module(f"{spec.package}.main").app.openapi()
        for path, operations in schema["paths"].items():
            for method, operation in operations.items():
                if not operation.get("security"):
                    continue
                values = {
                    p["name"]: _path_value(p) for p in operation.get("parameters", []) if p["in"] == "path"
                }
                found.append((spec.name, method.upper(), path.format(**values)))
    return sorted(found)


ROUTES = protected_routes()


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _claims(**changes: Any) -> dict[str, Any]:
    now = int(time.time())
    claims = {
        "iss": JWT_ISSUER,
        "aud": JWT_AUDIENCE,
        "sub": "1",
        "iat": now,
        "exp": now + 600,
        "jti": uuid.uuid4().hex,
        "roles": ["admin"],
        "username": "admin",
    }
    claims.update(changes)
    return {k: v for k, v in claims.items() if v is not None}


def _signed(key: KeyPair, **changes: Any) -> str:
    return jwt.encode(_claims(**changes), key.signing_key, algorithm="RS256", headers={"kid": key.kid})


def _unsigned(claims: dict[str, Any], header: dict[str, Any]) -> str:
    return f"{_b64(json.dumps(header).encode())}.{_b64(json.dumps(claims).encode())}"


def alg_none(key: KeyPair, real_token: str) -> str:
    return _unsigned(_claims(), {"alg": "none", "typ": "JWT", "kid": key.kid}) + "."


def hs256_with_public_key(key: KeyPair, real_token: str) -> str:
    # jose refuses to HMAC with a PEM key, so the attacker's token is built by hand.
    signing_input = _unsigned(_claims(), {"alg": "HS256", "typ": "JWT", "kid": key.kid})
    signature = hmac.new(key.public_pem.encode(), signing_input.encode(), hashlib.sha256).digest()
    return f"{signing_input}.{_b64(signature)}"


def expired(key: KeyPair, real_token: str) -> str:
    return _signed(key, iat=int(time.time()) - 7200, exp=int(time.time()) - 3600)


def wrong_issuer(key: KeyPair, real_token: str) -> str:
    return _signed(key, iss="someone-else")


def wrong_audience(key: KeyPair, real_token: str) -> str:
    return _signed(key, aud="another-platform")


def without_expiry(key: KeyPair, real_token: str) -> str:
    return _signed(key, exp=None)


def tampered_payload(key: KeyPair, real_token: str) -> str:
    """A real user's token whose payload was edited to claim admin, keeping the original signature."""
    header, payload, signature = real_token.split(".")
    claims = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
    claims["roles"] = ["admin"]
    return f"{header}.{_b64(json.dumps(claims).encode())}.{signature}"


@functools.cache
def _another_key(kid: str) -> KeyPair:
    return KeyPair.generate(kid=kid)  # same kid, so only the signature can tell


def signed_by_another_key(key: KeyPair, real_token: str) -> str:
    return _signed(_another_key(key.kid))


def garbage(key: KeyPair, real_token: str) -> str:
    return "not.a.jwt"


ATTACKS: list[Callable[[KeyPair, str], str]] = [
    alg_none,
    hs256_with_public_key,
    expired,
    wrong_issuer,
    wrong_audience,
    without_expiry,
    tampered_payload,
    signed_by_another_key,
    garbage,
]


@pytest.fixture(scope="module")
def urls(services: ServiceStack) -> dict[str, str]:
    return {name: services.start(name).url for name in {service for service, _, _ in ROUTES}}


@pytest.fixture(scope="module")
def user_token(register_and_login) -> str:
    return register_and_login("victim").token


def test_every_service_has_protected_routes():
    assert {service for service, _, _ in ROUTES} == {spec.name for spec in catalogue.SERVICES}


@pytest.mark.parametrize(("service", "method", "path"), ROUTES, ids=[f"{s}:{m}:{p}" for s, m, p in ROUTES])
def test_forged_tokens_are_rejected(urls, services, admin_token, user_token, service, method, path):
    url = urls[service] + path
    with httpx.Client(timeout=30) as client:
        accepted = client.request(method, url, json={}, headers={"Authorization": f"Bearer {admin_token}"})
        assert accepted.status_code != 401, "a valid token must get past authentication"
        for attack in ATTACKS:
            token = attack(services.signing_key, user_token)
            response = client.request(method, url, json={}, headers={"Authorization": f"Bearer {token}"})
            assert response.status_code == 401, f"{attack.__name__}: {response.status_code} {response.text}"
            assert response.headers["www-authenticate"] == "Bearer"
            assert set(response.json()) == {"detail"}
        for headers in ({}, {"Authorization": "Basic YWRtaW46YWRtaW4="}, {"Authorization": "Bearer"}):
            assert client.request(method, url, json={}, headers=headers).status_code == 401
