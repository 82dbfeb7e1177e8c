"""The kit's TokenVerifier builds each verification key once (from a PEM, or per kid from the issuer's JWKS) and
rebuilds them when the JWKS is fetched anew, e.g. after a key rotation. The JWKS is served over real HTTP."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncIterator

import pytest
from harness import KeyPair
from jose import jwk, jwt
from starlette.exceptions import HTTPException

from service_kit.auth import TokenVerifier
from service_kit.http import create_http_client
from service_kit.settings import ServiceSettings

SETTINGS = dict(service_name="t", database_url="postgresql://unused", redis_url="redis://unused")


def token(key: KeyPair, kid: object = "default", **claims: object) -> str:
    now = int(time.time())
    body = {"iss": "commerce-users", "aud": "commerce-platform", "sub": "7", "iat": now, "exp": now + 60}
    headers = {} if kid is None else {"kid": key.kid if kid == "default" else kid}
    return jwt.encode(body | {"jti": "j"} | claims, key.signing_key, algorithm="RS256", headers=headers)


def jwks_of(*keys: KeyPair) -> dict:
    return {"keys": [jwk.construct(k.public_pem, "RS256").to_dict() | {"kid": k.kid} for k in keys]}


class JwksServer:
    def __init__(self) -> None:
        self.document: dict = {"keys": []}
        self.fetches = 0
        self.port = 0

    async def handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.readuntil(b"\r\n\r\n")
        self.fetches += 1
        body = json.dumps(self.document).encode()
        head = f"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: {len(body)}\r\n"
        writer.write(head.encode() + b"Connection: close\r\n\r\n" + body)
        await writer.drain()
        writer.close()


@pytest.fixture(scope="module")
async def jwks_server() -> AsyncIterator[JwksServer]:
    server = JwksServer()
    listener = await asyncio.start_server(server.handle, "127.0.0.1", 0)
    server.port = listener.sockets[0].getsockname()[1]
    try:
        yield server
    finally:
        listener.close()


async def test_a_pem_key_is_built_once_and_still_rejects_other_signers():
    key, other = KeyPair.generate("a"), KeyPair.generate("a")
    verifier = TokenVerifier(ServiceSettings(**SETTINGS), public_key=key.public_pem)
    assert (await verifier.verify(token(key))).user_id == "7"
    built = verifier._public_key_object
    assert (await verifier.verify(token(key))).user_id == "7"
    assert verifier._public_key_object is built
    with pytest.raises(HTTPException) as rejected:
        await verifier.verify(token(other))
    assert rejected.value.status_code == 401


async def _always_active(principal) -> bool:
    return True


async def test_jwks_keys_are_built_per_kid_and_rebuilt_after_a_rotation(jwks_server):
    old, new = KeyPair.generate("k-old"), KeyPair.generate("k-new")
    jwks_server.document = jwks_of(old)
    http = create_http_client()
    settings = ServiceSettings(**SETTINGS, jwt_jwks_url=f"http://127.0.0.1:{jwks_server.port}/jwks")
    verifier = TokenVerifier(settings, http, active_check=_always_active)  # this test is about keys only
    try:
        fetches = jwks_server.fetches
        for _ in range(3):
            assert (await verifier.verify(token(old))).user_id == "7"
        assert jwks_server.fetches == fetches + 1
        assert set(verifier._jwk_objects) == {"k-old"}

        # The issuer rotates: a token with the new kid makes the verifier refetch (its last fetch is over 10 s
        # old), and only keys from the new set are used from then on.
        jwks_server.document = jwks_of(new)
        verifier._jwks_fetched_at -= 11
        assert (await verifier.verify(token(new))).user_id == "7"
        assert set(verifier._jwk_objects) == {"k-new"}
        # A token without a usable kid is checked against the whole set, as python-jose does (never a 500).
        for kid in (None, ["k-new"], 7):
            assert (await verifier.verify(token(new, kid=kid))).user_id == "7"
        for rejected in (token(old), token(old, kid="k-new"), token(old, kid=None)):
            with pytest.raises(HTTPException) as refused:
                await verifier.verify(rejected)
            assert refused.value.status_code == 401
    finally:
        await http.aclose()


@pytest.mark.parametrize("seconds", ["0", "61", "-5"])
def test_the_active_check_window_is_refused_outside_1_to_60_seconds(seconds, monkeypatch):
    """The 60 s bound on a disabled user's access cannot be configured away: a start-up error naming the fix."""
    from service_kit.app import ConfigurationError, load_settings

    for name, value in SETTINGS.items():
        monkeypatch.setenv(name.upper(), value)
    monkeypatch.setenv("ACTIVE_CHECK_SECONDS", seconds)
    with pytest.raises(ConfigurationError, match=r"ACTIVE_CHECK_SECONDS: Input should be"):
        load_settings(ServiceSettings)
    monkeypatch.setenv("ACTIVE_CHECK_SECONDS", "60")
    assert load_settings(ServiceSettings).active_check_seconds == 60


async def test_a_verified_token_is_not_verified_again_until_the_window_passes(monkeypatch):
    """The same token again (a customer's next order) skips the RS256 check; another token does not."""
    import service_kit.auth as kit_auth

    key = KeyPair.generate("a")
    verifier = TokenVerifier(ServiceSettings(**SETTINGS), public_key=key.public_pem)
    decoded = []
    real_decode = kit_auth.jwt.decode
    monkeypatch.setattr(kit_auth.jwt, "decode", lambda *a, **kw: decoded.append(1) or real_decode(*a, **kw))
    first, second = token(key), token(key, sub="8")
    for _ in range(3):
        assert (await verifier.verify(first)).user_id == "7"
    assert (await verifier.verify(second)).user_id == "8"
    assert len(decoded) == 2
    verifier._verified.clear()  # the window passed (or the key set changed): checked in full again
    assert (await verifier.verify(first)).user_id == "7" and len(decoded) == 3
    forged = first[:-4] + ("AAAA" if not first.endswith("AAAA") else "BBBB")
    with pytest.raises(HTTPException):
        await verifier.verify(forged)
