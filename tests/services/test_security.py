"""Issue 14's findings, replayed against the four services as real processes (real Postgres, Redis, HTTP).

Each test is one attack from the issue; each failed on the services before the fix (the gateway's own findings
are in tests/e2e/test_gateway.py, the token-forgery matrix in test_token_attacks.py):

- free goods: a customer refunding their own completed order's payment;
- anyone moving stock or money: an end user's token on the internal endpoints (reservations, payment creation,
  the payments lookup and refund), which only the calling service's own identity may use now;
- payments not bound to orders: a customer creating a payment for any order at any amount;
- inputs: NUL bytes (500 before), bodies without a limit, amounts beyond their columns, a zero price;
- login: no throttling, a disabled account confirming its password, tokens of disabled or deleted users
  working for 15 minutes.
"""

from __future__ import annotations

import importlib
import time
import uuid

import asyncpg
import httpx
import pytest
from fastapi import FastAPI
from flow_support import create_product, fetch, order_body, start_all, stock_of
from harness import JWT_AUDIENCE, JWT_ISSUER, auth, database_url, dead_redis_url
from jose import jwt
from prometheus_client.parser import text_string_to_metric_families

from commerce_platform import catalogue
from service_kit.errors import install_error_handlers
from service_kit.limits import MAX_PRICE, MAX_QUANTITY

pytestmark = pytest.mark.heavy(40)

TWO_MIB = 2 * 1024 * 1024
# The bound the issue sets. The kit keeps the issuer's answer ACTIVE_CHECK_SECONDS (1–60; the harness sets 1), so
# these tests end within a second or two of the account going; the deadline is the bound, not the expectation.
DISABLED_WITHIN_SECONDS = 60


@pytest.fixture(scope="module")
def stack(services):
    return start_all(services)


@pytest.fixture(scope="module")
def product(stack, admin_token):
    return create_product(stack, admin_token, price="7.25", stock=100, name="security widget")


def place(stack, token, body, key=None):
    headers = auth(token) | ({"Idempotency-Key": key} if key else {})
    return httpx.post(stack.orders.url + "/orders/", json=body, headers=headers, timeout=30)


def completed_order(stack, token, product, quantity=2) -> dict:
    response = place(stack, token, order_body(product["id"], quantity))
    assert response.status_code == 201 and response.json()["status"] == "completed", response.text
    return response.json()


def internal_routes() -> list[tuple[str, str, str]]:
    """(service, method, path) of every operation under /internal/, from each service's OpenAPI."""
    found = []
    for spec in catalogue.SERVICES:
        schema = importlib.import_module(f"{spec.package}.main").app.openapi()
        for path, operations in schema["paths"].items():
            if path.startswith("/internal/") and path != "/internal/token":
                for method in operations:
                    found.append((spec.name, method.upper(), path))
    return sorted(found)


INTERNAL = internal_routes()


# --- service identity ------------------------------------------------------------------------------------
def test_the_internal_endpoints_are_the_ones_orders_uses():
    assert {(s, m) for s, m, _ in INTERNAL} == {
        ("inventory", "POST"),  # reserve, release, reserve several orders' stock at once
        ("payments", "POST"),  # create, refund, create several orders' payments at once
        ("payments", "GET"),  # the lookup by order
    }
    assert len(INTERNAL) == 7


@pytest.mark.parametrize(
    ("service", "method", "path"), INTERNAL, ids=[f"{s}:{m}:{p}" for s, m, p in INTERNAL]
)
def test_an_end_users_token_on_an_internal_endpoint_is_403(
    stack, services, alice, admin_token, service, method, path
):
    # Ids filled in here, not in INTERNAL: the test ids must be the same in every pytest-xdist worker.
    path = path.replace("{order_id}", str(uuid.uuid4())).replace("{payment_id}", str(uuid.uuid4()))
    url = services.start(service).url + path
    body = {
        "order_id": str(uuid.uuid4()),
        "product_id": 1,
        "quantity": 1,
        "amount": "1.00",
        "currency": "USD",
    }
    for token in (alice.token, admin_token):  # not even an admin's: these are for services
        headers = auth(token) | {"Idempotency-Key": uuid.uuid4().hex, "X-Acting-User": token}
        response = httpx.request(
            method, url, json=body, headers=headers, params={"order_id": body["order_id"]}
        )
        assert (response.status_code, response.json()) == (403, {"detail": "service identity required"})


def test_a_service_token_is_for_its_audience_only(stack, services, alice, product):
    for_payments = services.service_token("payments")
    reserve = {"order_id": str(uuid.uuid4()), "product_id": product["id"], "quantity": 1}
    wrong = httpx.post(
        stack.inventory.url + "/internal/reservations", json=reserve, headers=auth(for_payments)
    )
    assert wrong.status_code == 401
    for_inventory = services.service_token("inventory")
    right = httpx.post(
        stack.inventory.url + "/internal/reservations", json=reserve, headers=auth(for_inventory)
    )
    assert right.status_code == 201
    # And a service's token is no user's: not for the public API, not as an admin.
    assert httpx.get(stack.orders.url + "/orders/", headers=auth(for_inventory)).status_code == 401
    patch = httpx.patch(
        f"{stack.inventory.url}/products/{product['id']}", json={"stock": 0}, headers=auth(for_inventory)
    )
    assert patch.status_code == 401
    claims = jwt.get_unverified_claims(for_inventory)
    assert (claims["aud"], claims["service"], claims["iss"]) == ("inventory", "orders", JWT_ISSUER)
    assert claims["exp"] - claims["iat"] <= 300 and "roles" not in claims


def test_service_tokens_need_the_callers_own_secret(stack, services):
    def ask(**change):
        form = {
            "grant_type": "client_credentials",
            "client_id": "orders",
            "client_secret": services.client_secrets["orders"],
            "audience": "payments",
        }
        return httpx.post(stack.users.url + "/internal/token", data=form | change)

    granted = ask()
    assert granted.status_code == 200 and granted.headers["cache-control"] == "no-store"
    assert granted.json()["expires_in"] == 300
    for change in (
        {"client_secret": "x" * 43},
        {"client_id": "payments"},  # no secret of its own
        {"grant_type": "password"},
        {"audience": JWT_AUDIENCE},  # cannot mint an end user's kind of token
        {"audience": "orders"},  # nor one for itself
    ):
        refused = ask(**change)
        assert refused.status_code == 401, (change, refused.text)


def test_a_payment_needs_the_acting_users_own_valid_token(stack, services, alice):
    as_orders = auth(services.service_token("payments"))
    body = {"order_id": str(uuid.uuid4()), "amount": "3.00", "currency": "USD"}
    for acting in (
        {},
        {"X-Acting-User": "not-a-token"},
        {"X-Acting-User": services.service_token("payments")},
    ):
        headers = as_orders | acting | {"Idempotency-Key": uuid.uuid4().hex}
        response = httpx.post(stack.payments.url + "/internal/payments", json=body, headers=headers)
        assert response.status_code in (403, 422), response.text
    ok = httpx.post(
        stack.payments.url + "/internal/payments",
        json=body,
        headers=as_orders | {"X-Acting-User": alice.token, "Idempotency-Key": uuid.uuid4().hex},
    )
    assert ok.status_code == 201
    mine = httpx.get(
        stack.payments.url + "/payments/", params={"order_id": body["order_id"]}, headers=auth(alice.token)
    )
    assert [p["id"] for p in mine.json()] == [ok.json()["id"]]  # recorded as Alice's


# --- money follows the order -----------------------------------------------------------------------------
def test_a_customer_cannot_refund_a_completed_order(stack, alice, product):
    order = completed_order(stack, alice.token, product)
    before = stock_of(stack, product["id"])
    refund = httpx.post(
        f"{stack.payments.url}/payments/{order['payment_id']}/refund", headers=auth(alice.token)
    )
    assert refund.status_code == 403
    again = httpx.get(f"{stack.orders.url}/orders/{order['order_id']}", headers=auth(alice.token)).json()
    payment = httpx.get(
        f"{stack.payments.url}/payments/{order['payment_id']}", headers=auth(alice.token)
    ).json()
    assert (again["status"], payment["status"]) == ("completed", "authorized")
    assert stock_of(stack, product["id"]) == before


def test_customers_cannot_create_payments(stack, alice):
    body = {"order_id": str(uuid.uuid4()), "amount": "0.01", "currency": "USD"}
    headers = auth(alice.token) | {"Idempotency-Key": uuid.uuid4().hex}
    assert httpx.post(stack.payments.url + "/payments/", json=body, headers=headers).status_code == 405
    internal = httpx.post(stack.payments.url + "/internal/payments", json=body, headers=headers)
    assert internal.status_code == 403


def test_the_payment_is_the_orders_own_amount(stack, alice, product):
    order = completed_order(stack, alice.token, product, quantity=3)
    payment = httpx.get(
        f"{stack.payments.url}/payments/{order['payment_id']}", headers=auth(alice.token)
    ).json()
    assert payment["amount"] == order["amount"] == "21.75"


def test_the_owner_cancels_a_completed_order_refund_and_stock_and_idempotently(stack, alice, product):
    order = completed_order(stack, alice.token, product, quantity=4)
    before = stock_of(stack, product["id"])
    path = f"{stack.orders.url}/orders/{order['order_id']}/cancel"
    cancelled = httpx.post(path, headers=auth(alice.token), timeout=30)
    assert cancelled.status_code == 200, cancelled.text
    assert cancelled.json() == order | {"status": "cancelled"}
    assert stock_of(stack, product["id"]) == before + 4
    payment = httpx.get(
        f"{stack.payments.url}/payments/{order['payment_id']}", headers=auth(alice.token)
    ).json()
    assert payment["status"] == "refunded"
    again = httpx.post(path, headers=auth(alice.token), timeout=30)
    assert (again.status_code, again.json()["status"]) == (200, "cancelled")
    assert stock_of(stack, product["id"]) == before + 4  # given back once


def test_an_admin_may_cancel_others_may_not_and_learn_nothing(stack, alice, bob, admin_token, product):
    order = completed_order(stack, alice.token, product)
    path = f"{stack.orders.url}/orders/{order['order_id']}/cancel"
    hidden = httpx.post(path, headers=auth(bob.token))
    missing = httpx.post(f"{stack.orders.url}/orders/{uuid.uuid4()}/cancel", headers=auth(bob.token))
    assert (
        (hidden.status_code, hidden.json())
        == (missing.status_code, missing.json())
        == (
            404,
            {"detail": "order not found"},
        )
    )
    assert httpx.post(path, headers=auth(admin_token), timeout=30).json()["status"] == "cancelled"


def test_a_failed_order_cannot_be_cancelled(stack, admin_token, alice):
    scarce = create_product(stack, admin_token, price="1.00", stock=0)
    failed = place(stack, alice.token, order_body(scarce["id"])).json()
    assert failed["status"] == "failed"
    response = httpx.post(f"{stack.orders.url}/orders/{failed['order_id']}/cancel", headers=auth(alice.token))
    assert response.status_code == 409


def test_order_listings_show_the_callers_own_orders_only(stack, register_and_login, admin_token, product):
    carol, dave = register_and_login("carol"), register_and_login("dave")
    mine = [completed_order(stack, carol.token, product, 1)["order_id"] for _ in range(3)]
    theirs = completed_order(stack, dave.token, product, 1)["order_id"]
    page = httpx.get(stack.orders.url + "/orders/", params={"limit": 2}, headers=auth(carol.token)).json()
    assert [o["order_id"] for o in page] == mine[::-1][:2]  # newest first
    rest = httpx.get(
        stack.orders.url + "/orders/", params={"limit": 2, "offset": 2}, headers=auth(carol.token)
    )
    assert [o["order_id"] for o in rest.json()] == [mine[0]]
    everyone = httpx.get(
        stack.orders.url + "/orders/", params={"limit": 100}, headers=auth(admin_token)
    ).json()
    assert {theirs, *mine} <= {o["order_id"] for o in everyone}
    assert httpx.get(stack.orders.url + "/orders/").status_code == 401


# --- limits that agree end to end -------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("service", "path", "body"),
    [
        (
            "users",
            "/users/",
            {"username": "nul\x00byte", "email": "n@example.com", "password": "password123"},
        ),
        ("inventory", "/products/", {"name": "nul\x00name", "price": "1.00", "stock": 1}),
        ("orders", "/orders/", {"product_id": 1, "quantity": 1, "shipping_address": "1 Main St\x00"}),
        ("orders", "/orders/", {"product_id": 1, "quantity": 1, "shipping_address": "bell\x07"}),
    ],
)
def test_nul_and_control_characters_are_422(stack, services, admin_token, alice, service, path, body):
    token = admin_token if service == "inventory" else alice.token
    response = httpx.post(services.start(service).url + path, json=body, headers=auth(token))
    assert response.status_code == 422, response.text
    # (A username's own pattern already refuses them; the other fields say why.)
    assert service == "users" or "control characters" in response.text


def test_a_nul_byte_in_a_login_is_the_usual_401(stack):
    response = httpx.post(stack.users.url + "/token", data={"username": "ad\x00min", "password": "whatever1"})
    assert (response.status_code, response.json()) == (401, {"detail": "incorrect username or password"})


@pytest.mark.parametrize("service", [s.name for s in catalogue.SERVICES])
def test_a_2_mib_body_is_413_without_being_read(stack, services, service):
    paths = {"users": "/users/", "inventory": "/products/", "payments": "/internal/payments"}
    url = services.start(service).url + paths.get(service, f"/{service}/")
    declared = httpx.post(
        url, content=b"{" + b" " * TWO_MIB + b"}", headers={"content-type": "application/json"}
    )
    assert declared.status_code == 413 and "larger than" in declared.json()["detail"]
    chunked = httpx.post(
        url, content=(b" " * 65536 for _ in range(32)), headers={"content-type": "application/json"}
    )
    assert chunked.status_code == 413


@pytest.mark.parametrize("price", [str(MAX_PRICE + 1), "9999999999.99", "0", "0.00", "-1"])
def test_prices_outside_the_bounds_are_refused_at_creation(stack, admin_token, price):
    response = httpx.post(
        stack.inventory.url + "/products/",
        json={"name": "priceless", "price": price, "stock": 1},
        headers=auth(admin_token),
    )
    assert response.status_code == 422, response.text


def test_the_largest_order_fits_every_column(stack, admin_token, alice):
    """The top price × the top quantity fits payments' numeric(12,2): the order ends (here declined by the
    simulated provider), never a 500 or an order stuck in processing."""
    dear = create_product(stack, admin_token, price=str(MAX_PRICE), stock=MAX_QUANTITY)
    response = place(stack, alice.token, order_body(dear["id"], MAX_QUANTITY))
    assert response.status_code == 201, response.text
    order = response.json()
    assert (order["status"], order["failure_reason"]) == ("failed", "payment declined: amount exceeds limit")
    assert order["amount"] == str(MAX_PRICE * MAX_QUANTITY)
    too_many = place(stack, alice.token, order_body(dear["id"], MAX_QUANTITY + 1))
    assert too_many.status_code == 422


async def test_a_database_data_error_is_a_422_from_the_kit(services):
    """The last line: a value the models let through but Postgres refuses is mapped once, in the kit."""
    services.start("users")
    app = FastAPI()
    install_error_handlers(app)

    @app.get("/echo")
    async def echo(text: str) -> str:
        conn = await asyncpg.connect(database_url("users"))
        try:
            return await conn.fetchval("SELECT $1::text", text)
        finally:
            await conn.close()

    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://kit") as client:
        assert (await client.get("/echo", params={"text": "fine"})).json() == "fine"
        refused = await client.get("/echo", params={"text": "nul\x00"})
    assert refused.status_code == 422
    assert refused.json() == {"detail": "text contains a character the database cannot store (e.g. NUL)"}


# --- login ---------------------------------------------------------------------------------------------------
def metric(service, name: str, **labels: str) -> float:
    text = httpx.get(service.metrics_url, timeout=10).text
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            if sample.name == name and all(sample.labels.get(k) == v for k, v in labels.items()):
                return sample.value
    return 0.0


def test_50_wrong_passwords_in_a_row_get_429s_with_retry_after(stack, register_and_login):
    victim = register_and_login("victim")
    username = victim.user["username"]
    throttled_before = metric(stack.users, "users_login_failures_total", reason="throttled")
    with httpx.Client(base_url=stack.users.url, timeout=30) as client:
        answers = [
            client.post("/token", data={"username": username, "password": f"guess-{i}"}) for i in range(50)
        ]
        statuses = [a.status_code for a in answers]
        assert statuses[:10] == [401] * 10 and statuses[10:] == [429] * 40
        assert all(1 <= int(a.headers["retry-after"]) <= 300 for a in answers[10:])
        assert answers[-1].json() == {"detail": "too many failed logins; try again later"}
        # Even the right password waits: the guesser must not learn it is right.
        assert (
            client.post("/token", data={"username": username, "password": victim.password}).status_code == 429
        )
        # Other accounts log in as usual.
        other = register_and_login("bystander")
        honest = client.post("/token", data={"username": other.user["username"], "password": other.password})
        assert honest.status_code == 200
    assert metric(stack.users, "users_login_failures_total", reason="throttled") >= throttled_before + 41


def test_one_client_guessing_many_usernames_is_throttled(services):
    instance = services.start_extra("users", env={"LOGIN_CLIENT_LIMIT": "5/minute"})
    client_ip = f"198.51.100.{uuid.uuid4().int % 250}"
    try:
        statuses = [
            httpx.post(
                instance.url + "/token",
                data={"username": f"nobody-{uuid.uuid4().hex[:8]}", "password": "password1"},
                headers={"X-Forwarded-For": client_ip},
                timeout=30,
            ).status_code
            for _ in range(8)
        ]
        assert statuses == [401] * 5 + [429] * 3
    finally:
        services.stop(instance)


def test_login_throttling_fails_open_when_redis_is_down(services, register_and_login):
    account = register_and_login("open")
    instance = services.start_extra("users", env={"REDIS_URL": dead_redis_url()})
    try:
        for _ in range(12):
            wrong = httpx.post(
                instance.url + "/token", data={"username": account.user["username"], "password": "nope-nope"}
            )
            assert wrong.status_code == 401
        right = httpx.post(
            instance.url + "/token", data={"username": account.user["username"], "password": account.password}
        )
        assert right.status_code == 200
    finally:
        services.stop(instance)


def test_token_responses_are_not_stored(stack, alice):
    response = httpx.post(
        stack.users.url + "/token", data={"username": alice.user["username"], "password": alice.password}
    )
    assert response.status_code == 200
    assert response.headers["cache-control"] == "no-store" and response.headers["pragma"] == "no-cache"


async def test_a_disabled_account_gets_the_same_401_as_a_wrong_password(
    stack, register_and_login, admin_token
):
    account = register_and_login("disabled")
    disabled = httpx.patch(
        f"{stack.users.url}/users/{account.user['id']}", json={"is_active": False}, headers=auth(admin_token)
    )
    assert disabled.status_code == 200 and disabled.json()["is_active"] is False
    right = httpx.post(
        stack.users.url + "/token", data={"username": account.user["username"], "password": account.password}
    )
    wrong = httpx.post(
        stack.users.url + "/token", data={"username": account.user["username"], "password": "wrong-pass"}
    )
    assert (
        (right.status_code, right.json())
        == (wrong.status_code, wrong.json())
        == (
            401,
            {"detail": "incorrect username or password"},
        )
    )


def wait_until_refused(url: str, token: str) -> float:
    started = time.monotonic()
    while time.monotonic() - started < DISABLED_WITHIN_SECONDS:
        if httpx.get(url, headers=auth(token), timeout=10).status_code == 401:
            return time.monotonic() - started
        time.sleep(1)
    raise AssertionError(f"{url} still accepts the token {DISABLED_WITHIN_SECONDS}s after the account went")


@pytest.mark.parametrize("how", ["disable", "delete"])
def test_a_disabled_or_deleted_users_token_stops_working_within_60_s(
    stack, register_and_login, admin_token, how
):
    account = register_and_login(how)
    urls = [stack.users.url + "/users/me/", stack.orders.url + "/orders/", stack.payments.url + "/payments/"]
    for url in urls:  # accepted, and the answer is now cached by each service
        assert httpx.get(url, headers=auth(account.token), timeout=10).status_code == 200
    user_url = f"{stack.users.url}/users/{account.user['id']}"
    if how == "disable":
        response = httpx.patch(user_url, json={"is_active": False}, headers=auth(admin_token))
        assert response.status_code == 200
    else:
        assert httpx.delete(user_url, headers=auth(admin_token)).status_code == 204
    for url in urls:
        wait_until_refused(url, account.token)


def test_a_disabled_customer_cannot_order_once_the_active_check_window_passes(
    stack, product, register_and_login, admin_token
):
    """Orders no longer asks users per order: the token's verifier keeps the issuer's "active" answer per user for
    ACTIVE_CHECK_SECONDS (1 s in this stack); once it passes, a disabled customer's order is refused."""
    account = register_and_login("disabled-buyer")
    completed_order(stack, account.token, product, quantity=1)  # accepted: "active" is now cached by orders
    response = httpx.patch(
        f"{stack.users.url}/users/{account.user['id']}", json={"is_active": False}, headers=auth(admin_token)
    )
    assert response.status_code == 200
    deadline = time.monotonic() + DISABLED_WITHIN_SECONDS
    while True:
        refused = place(stack, account.token, order_body(product["id"], 1))
        if refused.status_code == 401:
            break
        assert refused.status_code == 201, refused.text  # still inside the window: accepted
        assert time.monotonic() < deadline, f"orders still accepts the token {DISABLED_WITHIN_SECONDS}s later"
        time.sleep(0.1)
    assert refused.json() == {"detail": "invalid token"}


def test_an_admin_cannot_lock_themselves_out(stack, admin_token):
    me = httpx.get(stack.users.url + "/users/me/", headers=auth(admin_token)).json()
    for response in (
        httpx.patch(
            f"{stack.users.url}/users/{me['id']}", json={"is_active": False}, headers=auth(admin_token)
        ),
        httpx.delete(f"{stack.users.url}/users/{me['id']}", headers=auth(admin_token)),
    ):
        assert response.status_code == 409
    assert httpx.get(stack.users.url + "/users/me/", headers=auth(admin_token)).status_code == 200


def test_only_an_admin_manages_accounts(stack, alice, bob):
    response = httpx.patch(
        f"{stack.users.url}/users/{bob.user['id']}", json={"is_active": False}, headers=auth(alice.token)
    )
    assert response.status_code == 403


# --- listing --------------------------------------------------------------------------------------------------
def test_products_are_listed_publicly_paginated_and_filtered(stack, admin_token):
    tag = uuid.uuid4().hex[:8]
    made = [
        create_product(stack, admin_token, price="2.00", stock=1, name=f"{tag} lamp {i}") for i in range(3)
    ]
    create_product(stack, admin_token, price="2.00", stock=1, name=f"{tag}%_ lookalike")
    first = httpx.get(stack.inventory.url + "/products/", params={"limit": 2, "name": f"{tag} LAMP"}).json()
    assert [p["id"] for p in first["items"]] == [made[0]["id"], made[1]["id"]]
    second = httpx.get(
        stack.inventory.url + "/products/",
        params={"limit": 2, "name": f"{tag} lamp", "after": first["next_after"]},
    ).json()
    assert ([p["id"] for p in second["items"]], second["next_after"]) == ([made[2]["id"]], None)
    # LIKE's wildcards in the filter are literal characters.
    literal = httpx.get(stack.inventory.url + "/products/", params={"name": f"{tag}%_"}).json()
    assert [p["name"] for p in literal["items"]] == [f"{tag}%_ lookalike"]
    assert httpx.get(stack.inventory.url + "/products/", params={"limit": 101}).status_code == 422


async def test_no_failed_or_cancelled_order_keeps_an_authorized_payment(stack):
    """The invariant behind "money follows the order", over every order this run made (this module runs after
    the flows and cancellations above)."""
    orders = await fetch("orders", "SELECT id FROM orders WHERE status IN ('failed', 'cancelled')")
    authorized = await fetch(
        "payments",
        "SELECT order_id FROM payments WHERE status = 'authorized' AND order_id = ANY($1)",
        [o["id"] for o in orders],
    )
    assert authorized == []


# --- API docs offline -----------------------------------------------------------------------------------------
@pytest.mark.parametrize("service", [s.name for s in catalogue.SERVICES])
def test_the_docs_pages_load_their_assets_from_the_service_itself(stack, services, service):
    """Before: Swagger UI and ReDoc came from a CDN, so without internet the pages were blank."""
    url = services.start(service).url
    for page, assets in (
        ("/docs", ("swagger-ui-bundle.js", "swagger-ui.css")),
        ("/redoc", ("redoc.standalone.js",)),
    ):
        html = httpx.get(url + page).text
        assert "cdn.jsdelivr.net" not in html and "unpkg.com" not in html
        for asset in assets:
            path = f"/static-offline-docs/{asset}"
            assert path in html, (page, asset)
            served = httpx.get(url + path)
            assert served.status_code == 200 and len(served.content) > 10_000


# --- the kit's service-token client ---------------------------------------------------------------------------
async def test_service_tokens_are_cached_and_renewed_on_a_401(stack, services, product):
    """service_kit.identity as orders uses it: one token fetch for many calls, and a refused token (e.g. after
    the issuer's key was rotated) replaced at once, the call retried with the new one."""
    from pydantic import SecretStr

    from service_kit.http import create_http_client, send
    from service_kit.identity import ServiceTokens

    http = create_http_client()
    tokens = ServiceTokens(
        http, stack.users.url + "/internal/token", "orders", SecretStr(services.client_secrets["orders"])
    )
    fetches = 0

    async def count(request: httpx.Request) -> None:
        nonlocal fetches
        fetches += request.url.path == "/internal/token"

    http.event_hooks["request"].append(count)
    try:
        auth_ = tokens.auth("inventory")
        for _ in range(3):
            body = {"order_id": str(uuid.uuid4()), "product_id": product["id"], "quantity": 1}
            reserved = await http.post(stack.inventory.url + "/internal/reservations", json=body, auth=auth_)
            assert reserved.status_code == 201, reserved.text
        assert fetches == 1
        tokens._tokens["inventory"] = ("not-a-token", time.monotonic() + 3600)  # cached, but refused
        body = {"order_id": str(uuid.uuid4()), "product_id": product["id"], "quantity": 1}
        reserved = await http.post(stack.inventory.url + "/internal/reservations", json=body, auth=auth_)
        assert reserved.status_code == 201 and fetches == 2
        # The same through `send()`, orders' way (straight onto the pool, no httpx request): renewed on a 401.
        tokens._tokens["inventory"] = ("not-a-token", time.monotonic() + 3600)
        body = {"order_id": str(uuid.uuid4()), "product_id": product["id"], "quantity": 1}
        url = stack.inventory.url + "/internal/reservations"
        reserved = await send(http, "POST", url, idempotent=True, json=body, auth=auth_)
        assert reserved.status_code == 201 and reserved.json()["status"] == "reserved" and fetches == 3
        reserved = await send(
            http, "POST", url, idempotent=True, json=body | {"order_id": str(uuid.uuid4())}, auth=auth_
        )
        assert reserved.status_code == 201 and fetches == 3
    finally:
        await http.aclose()
