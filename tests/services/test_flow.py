"""The seed's flow across all four services, each a separate uvicorn process, over real HTTP.

Orders answer 201 whatever the outcome; a failed order has status "failed" and a failure_reason.
"""

from __future__ import annotations

import asyncio
import uuid
from datetime import UTC, datetime, timedelta

import asyncpg
import httpx
import pytest
from flow_support import create_product, fetch, money, order_body, start_all, stock_of
from harness import auth, database_url, dead_database_url, free_port

from orders_service.domain.models import OrderRequest
from orders_service.infrastructure.repository import OrdersRepository
from payments_service.settings import PaymentsSettings

pytestmark = pytest.mark.heavy(20)

DECLINE_ABOVE = PaymentsSettings.model_fields["payment_decline_above"].default


@pytest.fixture(scope="module")
def stack(services):
    return start_all(services)


@pytest.fixture(scope="module")
def orders(stack):
    with httpx.Client(base_url=stack.orders.url, timeout=30) as client:
        yield client


@pytest.fixture(scope="module")
def product(stack, admin_token):
    return create_product(stack, admin_token, price="19.99", stock=1000)


def place(orders, token, body, key=None):
    headers = auth(token) | ({"Idempotency-Key": key} if key else {})
    return orders.post("/orders/", json=body, headers=headers)


def test_the_seed_flow_register_token_me_product_order_completed(stack, orders, admin_token):
    name = f"shopper{uuid.uuid4().hex[:8]}"
    password = f"pw-{uuid.uuid4().hex}"
    with httpx.Client(base_url=stack.users.url, timeout=30) as users:
        registered = users.post(
            "/users/", json={"username": name, "email": f"{name}@example.com", "password": password}
        )
        assert registered.status_code == 201
        token = users.post("/token", data={"username": name, "password": password}).json()["access_token"]
        me = users.get("/users/me/", headers=auth(token))
        assert (me.status_code, me.json()["username"]) == (200, name)
    product = create_product(stack, admin_token, price="19.99", stock=10)
    assert stock_of(stack, product["id"]) == 10

    response = place(orders, token, order_body(product["id"], quantity=3))
    assert response.status_code == 201, response.text
    order = response.json()
    assert set(order) == {
        "order_id",
        "status",
        "product_id",
        "quantity",
        "shipping_address",
        "amount",
        "payment_id",
        "failure_reason",
        "created_at",
    }
    assert (order["status"], order["failure_reason"]) == ("completed", None)
    assert (order["product_id"], order["quantity"], money(order["amount"])) == (
        product["id"],
        3,
        money("59.97"),
    )

    status = orders.get(f"/orders/{order['order_id']}/status", headers=auth(token))
    assert status.json() == {"order_id": order["order_id"], "status": "completed", "failure_reason": None}
    assert orders.get(f"/orders/{order['order_id']}", headers=auth(token)).json() == order
    assert stock_of(stack, product["id"]) == 7

    payment = httpx.get(
        f"{stack.payments.url}/payments/{order['payment_id']}", headers=auth(token), timeout=10
    )
    assert payment.status_code == 200
    assert payment.json()["order_id"] == order["order_id"]
    assert (payment.json()["status"], money(payment.json()["amount"])) == ("authorized", money("59.97"))


def test_a_declined_payment_fails_the_order_and_gives_the_stock_back(
    stack, orders, admin_token, register_and_login
):
    buyer = register_and_login("decline")
    pricey = create_product(stack, admin_token, price=str(DECLINE_ABOVE / 2 + 1), stock=5)
    response = place(orders, buyer.token, order_body(pricey["id"], quantity=2))
    assert response.status_code == 201
    order = response.json()
    assert order["status"] == "failed"
    assert order["failure_reason"] == "payment declined: amount exceeds limit"
    assert stock_of(stack, pricey["id"]) == 5
    payment = httpx.get(f"{stack.payments.url}/payments/{order['payment_id']}", headers=auth(buyer.token))
    assert (payment.json()["status"], payment.json()["decline_reason"]) == (
        "declined",
        "amount exceeds limit",
    )


def test_insufficient_stock_and_unknown_products_fail_the_order(
    stack, orders, admin_token, register_and_login
):
    buyer = register_and_login("short")
    scarce = create_product(stack, admin_token, price="5.00", stock=2)
    too_many = place(orders, buyer.token, order_body(scarce["id"], quantity=3)).json()
    assert (too_many["status"], too_many["failure_reason"], too_many["payment_id"]) == (
        "failed",
        "insufficient stock",
        None,
    )
    assert stock_of(stack, scarce["id"]) == 2
    unknown = place(orders, buyer.token, order_body(2**40)).json()
    assert (unknown["status"], unknown["failure_reason"]) == ("failed", "product not found")


def test_only_the_owner_or_an_admin_sees_an_order(orders, product, admin_token, register_and_login):
    owner, stranger = register_and_login("owner"), register_and_login("stranger")
    order = place(orders, owner.token, order_body(product["id"])).json()
    for path in (f"/orders/{order['order_id']}", f"/orders/{order['order_id']}/status"):
        assert orders.get(path, headers=auth(owner.token)).status_code == 200
        assert orders.get(path, headers=auth(admin_token)).status_code == 200
        hidden = orders.get(path, headers=auth(stranger.token))
        assert (hidden.status_code, hidden.json()) == (404, {"detail": "order not found"})
    assert orders.get(f"/orders/{uuid.uuid4()}", headers=auth(owner.token)).status_code == 404
    anonymous = orders.get(f"/orders/{order['order_id']}")
    assert (anonymous.status_code, anonymous.headers["www-authenticate"]) == (401, "Bearer")


def test_an_idempotency_key_returns_the_same_order_and_rejects_another_body(
    stack, orders, product, register_and_login
):
    buyer = register_and_login("idem")
    key = uuid.uuid4().hex
    before = stock_of(stack, product["id"])
    first = place(orders, buyer.token, order_body(product["id"], quantity=2), key)
    again = place(orders, buyer.token, order_body(product["id"], quantity=2), key)
    assert (first.status_code, again.status_code) == (201, 200)
    assert again.json() == first.json()
    other = place(orders, buyer.token, order_body(product["id"], quantity=3), key)
    assert other.status_code == 422
    assert other.json() == {"detail": "Idempotency-Key was already used with a different order"}
    assert stock_of(stack, product["id"]) == before - 2
    # Keys belong to their user: another user's equal key is a new order.
    assert place(orders, register_and_login("idem").token, order_body(product["id"]), key).status_code == 201


async def test_concurrent_requests_with_one_key_create_one_order(stack, product, register_and_login):
    buyer = register_and_login("racer")
    headers = auth(buyer.token) | {"Idempotency-Key": uuid.uuid4().hex}
    before = stock_of(stack, product["id"])
    async with httpx.AsyncClient(base_url=stack.orders.url, timeout=30) as client:
        responses = await asyncio.gather(
            *(client.post("/orders/", json=order_body(product["id"]), headers=headers) for _ in range(10))
        )
    assert sorted(r.status_code for r in responses) == [200] * 9 + [201]
    assert len({r.json()["order_id"] for r in responses}) == 1
    rows = await fetch("orders", "SELECT status FROM orders WHERE user_id = $1", str(buyer.user["id"]))
    assert [r["status"] for r in rows] == ["completed"]
    assert stock_of(stack, product["id"]) == before - 1


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"quantity": 0}, "quantity"),
        ({"quantity": "lots"}, "quantity"),
        ({"shipping_address": "   "}, "shipping_address"),
        ({"shipping_address": "x" * 501}, "shipping_address"),
        ({"product_id": -1}, "product_id"),
        ({"coupon": "FREE"}, "coupon"),
    ],
)
def test_bad_orders_are_422_naming_the_field(orders, product, register_and_login, change, field):
    response = place(orders, register_and_login("bad").token, order_body(product["id"]) | change)
    assert response.status_code == 422
    assert response.json()["detail"][0]["loc"] == ["body", field]


def test_orders_need_a_token(orders, product):
    response = orders.post("/orders/", json=order_body(product["id"]))
    assert (response.status_code, response.headers["www-authenticate"]) == (401, "Bearer")


async def test_an_inactive_user_gets_401(orders, product, register_and_login):
    buyer = register_and_login("inactive")
    await fetch("users", "UPDATE users SET is_active = false WHERE id = $1", buyer.user["id"])
    response = place(orders, buyer.token, order_body(product["id"]))
    # Their token no longer works (the kit asks the issuer, which checks its database), like anyone's.
    assert (response.status_code, response.json()) == (401, {"detail": "invalid token"})


async def test_an_interrupted_order_is_resumed_when_retried_with_its_key(
    stack, orders, product, register_and_login
):
    """An order left in processing (the process died mid-flow) completes when its client retries."""
    buyer = register_and_login("resume")
    body, key, order_id = order_body(product["id"]), uuid.uuid4().hex, uuid.uuid4()
    fingerprint = OrderRequest.model_validate(body).fingerprint()
    stale = datetime.now(UTC) - timedelta(hours=1)
    await fetch(
        "orders",
        """INSERT INTO orders (id, user_id, product_id, quantity, shipping_address, status, idempotency_key,
                               request_hash, created_at, updated_at)
           VALUES ($1, $2, $3, 1, $4, 'processing', $5, $6, $7, $7)""",
        order_id,
        str(buyer.user["id"]),
        product["id"],
        body["shipping_address"],
        key,
        fingerprint,
        stale,
    )
    before = stock_of(stack, product["id"])
    response = place(orders, buyer.token, body, key)
    assert response.status_code == 200
    assert (response.json()["order_id"], response.json()["status"]) == (str(order_id), "completed")
    assert stock_of(stack, product["id"]) == before - 1


async def test_a_stale_order_goes_to_one_claimant_only(stack, product, register_and_login):
    """A client's retry resuming a stuck order and the sweeper compensating it (in any replica) both claim it by
    its updated_at as they read it: exactly one of them gets it, whoever comes second gets nothing."""
    buyer = register_and_login("claim")
    # Recent, so this service's own sweeper (ORDER_STUCK_AFTER_SECONDS) leaves it to the two claims below.
    order_id, touched = uuid.uuid4(), datetime.now(UTC)
    await fetch(
        "orders",
        """INSERT INTO orders (id, user_id, product_id, quantity, shipping_address, status, request_hash,
                               created_at, updated_at)
           VALUES ($1, $2, $3, 1, 'x', 'processing', 'x', $4, $4)""",
        order_id,
        str(buyer.user["id"]),
        product["id"],
        touched,
    )
    pool = await asyncpg.create_pool(database_url("orders"), min_size=2, max_size=2)
    try:
        repository = OrdersRepository(pool)
        seen = (await repository.get(order_id)).updated_at
        first, second = await asyncio.gather(
            repository.claim(order_id, seen), repository.claim(order_id, seen)
        )
    finally:
        await pool.close()
    assert [claim is not None for claim in (first, second)].count(True) == 1
    won = first or second
    assert won.status.value == "processing" and won.updated_at > seen
    await fetch("orders", "UPDATE orders SET status = 'failed' WHERE id = $1", order_id)  # not the sweeper's


def test_an_unreachable_users_service_is_a_clean_503(services, orders, product, register_and_login):
    # Orders reaches users only for the token's keys (JWKS), its active check and its own service tokens (no
    # call per order): with users gone before orders ever got its keys, an order is a clean 503.
    dead = f"http://127.0.0.1:{free_port()}"
    instance = services.start_extra(
        "orders",
        env={
            "USERS_URL": dead,
            "JWT_JWKS_URL": f"{dead}/.well-known/jwks.json",
            "SERVICE_TOKEN_URL": f"{dead}/internal/token",
        },
    )
    try:
        response = httpx.post(
            instance.url + "/orders/",
            json=order_body(product["id"]),
            headers=auth(register_and_login().token),
        )
        assert (response.status_code, response.json()) == (503, {"detail": "token issuer unavailable"})
    finally:
        services.stop(instance)


async def test_an_unreachable_payments_service_fails_the_order_and_releases_the_stock(
    services, stack, product, register_and_login
):
    instance = services.start_extra("orders", env={"PAYMENTS_URL": f"http://127.0.0.1:{free_port()}"})
    try:
        before = stock_of(stack, product["id"])
        response = httpx.post(
            instance.url + "/orders/",
            json=order_body(product["id"], 4),
            headers=auth(register_and_login().token),
        )
        assert response.status_code == 201
        order = response.json()
        assert (order["status"], order["failure_reason"]) == (
            "failed",
            "payment failed: payments service unreachable",
        )
        assert stock_of(stack, product["id"]) == before
        [reservation] = await fetch(
            "inventory", "SELECT status FROM reservations WHERE order_id = $1", uuid.UUID(order["order_id"])
        )
        assert reservation["status"] == "released"
    finally:
        services.stop(instance)


def test_losing_the_orders_database_is_a_clean_503(services, product, register_and_login):
    instance = services.start_extra("orders", env={"DATABASE_URL": dead_database_url()})
    try:
        response = httpx.post(
            instance.url + "/orders/",
            json=order_body(product["id"]),
            headers=auth(register_and_login().token),
        )
        assert (response.status_code, response.json()) == (503, {"detail": "dependency unavailable"})
    finally:
        services.stop(instance)
