"""The users service over real HTTP (uvicorn subprocess), on its own fresh database."""

from __future__ import annotations

import asyncio
import logging
import uuid

import asyncpg
import httpx
import pytest
from harness import ADMIN_USERNAME, JWT_AUDIENCE, JWT_ISSUER, auth, database_url
from jose import jwt

from users_service.domain.accounts import Accounts
from users_service.domain.errors import InvalidCredentials
from users_service.domain.models import UserCreate
from users_service.infrastructure.repository import UserRepository
from users_service.infrastructure.security import PasswordHasher, TokenIssuer
from users_service.settings import UsersSettings


@pytest.fixture(scope="module")
def users(start_service):
    return start_service("users")


@pytest.fixture(scope="module")
def client(users):
    with httpx.Client(base_url=users.url, timeout=20) as c:
        yield c


def new_user(prefix: str = "u") -> dict:
    name = f"{prefix}{uuid.uuid4().hex[:10]}"
    return {"username": name, "email": f"{name}@example.com", "password": f"pw-{uuid.uuid4().hex}"}


def test_register_returns_the_public_fields_only(client):
    body = new_user()
    response = client.post("/users/", json=body)
    assert response.status_code == 201
    user = response.json()
    assert set(user) == {"id", "username", "email", "is_active", "signup_date"}
    assert (user["username"], user["email"], user["is_active"]) == (body["username"], body["email"], True)


async def test_passwords_are_hashed_with_the_argon2id_cost_the_settings_give(client):
    """The harness sets users' PASSWORD_HASH_* to the lowest cost; the stored hash records the cost it was made
    with. Unset, the settings give argon2-cffi's defaults (3 passes over 64 MiB)."""
    body = new_user()
    assert client.post("/users/", json=body).status_code == 201
    connection = await asyncpg.connect(database_url("users"))
    try:
        stored = await connection.fetchval(
            "SELECT password_hash FROM users WHERE username = $1", body["username"]
        )
    finally:
        await connection.close()
    assert stored.startswith("$argon2id$v=19$m=1024,t=1,")
    defaults = UsersSettings.model_fields
    assert (defaults["password_hash_time_cost"].default, defaults["password_hash_memory_kib"].default) == (
        3,
        65536,
    )


def test_duplicate_username_or_email_is_409(client):
    body = new_user()
    assert client.post("/users/", json=body).status_code == 201
    same_name = new_user() | {"username": body["username"].upper()}
    same_email = new_user() | {"email": body["email"].upper()}
    for duplicate, field in ((same_name, "username"), (same_email, "email")):
        response = client.post("/users/", json=duplicate)
        assert response.status_code == 409
        assert response.json() == {"detail": f"{field} already registered"}


async def test_concurrent_registrations_of_one_name_create_one_user(users):
    body = new_user()
    async with httpx.AsyncClient(base_url=users.url, timeout=30) as client:
        responses = await asyncio.gather(*(client.post("/users/", json=body) for _ in range(8)))
    assert sorted(r.status_code for r in responses) == [201] + [409] * 7


@pytest.mark.parametrize(
    "change",
    [
        {"username": "ab"},
        {"username": "x" * 51},
        {"username": "has space"},
        {"email": "not-an-email"},
        {"password": "short7!"},
        {"password": "p" * 257},
    ],
)
def test_invalid_registration_is_422_without_echoing_the_input(client, change):
    body = new_user() | change
    response = client.post("/users/", json=body)
    assert response.status_code == 422
    detail = response.json()["detail"]
    assert isinstance(detail, list) and detail[0]["loc"][-1] == next(iter(change))
    assert body["password"] not in response.text


def test_malformed_json_is_422(client):
    response = client.post("/users/", content=b"{not json", headers={"content-type": "application/json"})
    assert response.status_code == 422


def test_token_carries_the_contract_claims(client, services):
    body = new_user()
    user = client.post("/users/", json=body).json()
    response = client.post("/token", data={"username": body["username"], "password": body["password"]})
    assert response.status_code == 200
    assert response.json()["token_type"] == "bearer"
    token = response.json()["access_token"]
    assert jwt.get_unverified_header(token)["kid"] == services.signing_key.kid
    claims = jwt.decode(
        token, services.signing_key.public_pem, algorithms=["RS256"], audience=JWT_AUDIENCE, issuer=JWT_ISSUER
    )
    assert claims["sub"] == str(user["id"])
    assert claims["username"] == body["username"]
    assert claims["roles"] == []
    assert claims["exp"] > claims["iat"] and len(claims["jti"]) >= 16


def test_bad_credentials_are_401_with_the_same_answer(client):
    body = new_user()
    client.post("/users/", json=body)
    attempts = [
        {"username": body["username"], "password": "wrong-password"},
        {"username": "nobody-" + uuid.uuid4().hex[:8], "password": "wrong-password"},
        {"username": body["username"], "password": "p" * 300},
    ]
    answers = []
    for form in attempts:
        response = client.post("/token", data=form)
        assert response.status_code == 401
        assert response.headers["www-authenticate"] == "Bearer"
        answers.append(response.json())
    assert answers == [{"detail": "incorrect username or password"}] * 3


def test_token_form_without_password_is_422(client):
    assert client.post("/token", data={"username": "someone"}).status_code == 422


@pytest.fixture
async def accounts(services):
    pool = await asyncpg.create_pool(database_url("users"), min_size=1, max_size=2)
    settings = UsersSettings(
        database_url=database_url("users"),
        jwt_private_key=services.signing_key.private_pem,
        service_client_secrets="{}",
        # The throttle's Redis: a required setting, though these accounts run without a throttle.
        redis_url=services.service_env("users")["REDIS_URL"],
    )
    try:
        yield Accounts(
            UserRepository(pool), PasswordHasher(time_cost=1, memory_kib=1024), TokenIssuer(settings)
        )
    finally:
        await pool.close()


async def test_unknown_user_costs_one_argon2_verification_like_a_wrong_password(accounts):
    """Timing equalization: both failure paths run the same argon2 verification (not a timing assertion)."""
    known = UserCreate(**new_user())
    stored = await accounts.register(known)
    # The dummy hash uses the same argon2 variant and parameters as real hashes, so it costs the same.
    assert accounts.hasher.dummy_hash.rsplit("$", 2)[0] == stored.password_hash.rsplit("$", 2)[0]
    for username in (known.username, "nobody-" + uuid.uuid4().hex[:8]):
        before = accounts.hasher.verifications
        with pytest.raises(InvalidCredentials):
            await accounts.authenticate(username, "wrong-password")
        assert accounts.hasher.verifications == before + 1


def test_me_returns_the_caller_and_needs_a_token(client, register_and_login):
    account = register_and_login()
    response = client.get("/users/me/", headers=auth(account.token))
    assert response.status_code == 200
    assert response.json() == account.user | {"roles": []}
    anonymous = client.get("/users/me/")
    assert anonymous.status_code == 401 and anonymous.headers["www-authenticate"] == "Bearer"


async def test_inactive_user_cannot_log_in_and_is_told_nothing_more(client):
    body = new_user()
    user = client.post("/users/", json=body).json()
    conn = await asyncpg.connect(database_url("users"))
    try:
        await conn.execute("UPDATE users SET is_active = false WHERE id = $1", user["id"])
    finally:
        await conn.close()
    response = client.post("/token", data={"username": body["username"], "password": body["password"]})
    # The same answer as a wrong password: a disabled account never confirms its password (tests/services/
    # test_security.py has the side-by-side comparison).
    assert response.status_code == 401
    assert response.json() == {"detail": "incorrect username or password"}


def test_admin_is_bootstrapped_with_the_admin_role(client, admin_token):
    me = client.get("/users/me/", headers=auth(admin_token)).json()
    assert me["username"] == ADMIN_USERNAME and me["roles"] == ["admin"]


async def test_admin_bootstrap_is_idempotent_and_never_overwrites(accounts, services, caplog):
    caplog.set_level(logging.INFO, logger="users.accounts")
    again = await accounts.bootstrap_admin(ADMIN_USERNAME, services.admin_password)
    other = await accounts.bootstrap_admin(ADMIN_USERNAME, "a-different-password")
    assert again.id == other.id and again.password_hash == other.password_hash
    messages = [r.getMessage() for r in caplog.records]
    assert "admin user already present" in messages
    assert "admin exists with a different password; ADMIN_PASSWORD not applied" in messages
    # The stored password is still the original one.
    assert services.admin_token()


def test_admin_name_taken_by_a_regular_user_is_not_promoted(services, register_and_login):
    account = register_and_login("squatter")
    instance = services.start_extra(
        "users", env={"ADMIN_USERNAME": account.user["username"], "ADMIN_PASSWORD": "another-password"}
    )
    try:
        me = httpx.get(instance.url + "/users/me/", headers=auth(account.token), timeout=10).json()
        assert me["roles"] == []
        # The bootstrap runs in the background right after start-up.
        line = instance.wait_for_log(lambda line: line["message"].startswith("admin not created"))
        assert line["message"] == "admin not created: a non-admin user has this name; not promoted"
    finally:
        services.stop(instance)


def test_jwks_publishes_the_rs256_public_key(client, services):
    jwks = client.get("/.well-known/jwks.json").json()
    assert len(jwks["keys"]) == 1
    key = jwks["keys"][0]
    assert {key["kty"], key["alg"], key["use"], key["kid"]} == {
        "RSA",
        "RS256",
        "sig",
        services.signing_key.kid,
    }
    assert key["e"] == "AQAB" and len(key["n"]) > 300
    assert not {"d", "p", "q", "dp", "dq", "qi"} & set(key)  # public half only


def test_request_id_is_echoed_and_logged(client, users):
    request_id = "test-" + uuid.uuid4().hex
    response = client.get("/users/me/", headers={"X-Request-ID": request_id, "User-Agent": "users-test/1"})
    assert response.status_code == 401
    assert response.headers["x-request-id"] == request_id
    generated = client.get("/health").headers["x-request-id"]
    assert len(generated) >= 16
    line = users.wait_for_log(lambda line: line.get("request_id") == request_id)
    assert [x for x in users.log_lines() if x.get("request_id") == request_id] == [line]
    assert line["service"] == "users"
    assert (line["method"], line["path"], line["status"]) == ("GET", "/users/me/", 401)
    assert line["duration_ms"] > 0
    assert line["client_ip"] == "127.0.0.1" and line["user_agent"] == "users-test/1"


def test_openapi_docs_are_served(client):
    assert client.get("/docs").status_code == 200
    paths = client.get("/openapi.json").json()["paths"]
    assert {"/users/", "/token", "/users/me/", "/.well-known/jwks.json"} <= set(paths)
