"""A charge whose answer is lost: payments took it, orders did not hear back (timeout, reset, 5xx).

Orders fails the order and releases the stock at once, then looks the payment up read-only
(`GET /payments/?order_id=`) and refunds it, in the background until it is found. The lost answer is made real
with a trigger in the payments test database that holds the charging INSERT's transaction open for longer than
the orders instance under test waits (HTTP_TIMEOUT_SECONDS=1, no retries): the payment commits after orders
gave up on it.
"""

from __future__ import annotations

import uuid
from decimal import Decimal

import httpx
import pytest
from flow_support import create_product, fetch, order_body, start_all, stock_of
from harness import auth

pytestmark = pytest.mark.heavy(20)

SLOW_SECONDS = 3.0
# How long orders waits for a lost charge to show up before it concludes none was taken: above SLOW_SECONDS
# (the late charge of the first test must still be found), far below the default 10 s.
LATE_CHARGE_GRACE_SECONDS = SLOW_SECONDS + 2
INSTALL = [
    """CREATE TABLE IF NOT EXISTS charge_faults (
           amount numeric(12, 2) PRIMARY KEY, sleep_seconds float NOT NULL, fail boolean NOT NULL)""",
    """
    CREATE OR REPLACE FUNCTION slow_charge() RETURNS trigger LANGUAGE plpgsql AS $$
    BEGIN
        PERFORM pg_sleep(sleep_seconds) FROM charge_faults WHERE amount = NEW.amount;
        IF EXISTS (SELECT 1 FROM charge_faults WHERE amount = NEW.amount AND fail) THEN
            RAISE EXCEPTION 'injected failure recording the charge';
        END IF;
        RETURN NEW;
    END $$
    """,
    "DROP TRIGGER IF EXISTS slow_charge ON payments",
    "CREATE TRIGGER slow_charge AFTER INSERT ON payments FOR EACH ROW EXECUTE FUNCTION slow_charge()",
]
UNINSTALL = [
    "DROP TRIGGER IF EXISTS slow_charge ON payments",
    "DROP FUNCTION IF EXISTS slow_charge()",
    "DROP TABLE IF EXISTS charge_faults",
]


@pytest.fixture(scope="module")
async def stack(services):
    stack = start_all(services)
    for statement in INSTALL:
        await fetch("payments", statement)
    yield stack
    for statement in UNINSTALL:
        await fetch("payments", statement)


@pytest.fixture(scope="module")
def impatient_orders(services, stack):
    instance = services.start_extra(
        "orders",
        env={
            "HTTP_TIMEOUT_SECONDS": "1",
            "HTTP_RETRIES": "0",
            "ORDER_LATE_CHARGE_GRACE_SECONDS": str(LATE_CHARGE_GRACE_SECONDS),
        },
    )
    yield instance
    services.stop(instance)


async def inject(amount: Decimal, *, sleep_seconds: float = 0.0, fail: bool = False) -> None:
    await fetch("payments", "INSERT INTO charge_faults VALUES ($1, $2, $3)", amount, sleep_seconds, fail)


def compensated(instance, order_id: str, timeout: float) -> None:
    instance.wait_for_log(
        lambda line: (
            line.get("message") == "order compensated after retries" and line.get("order_id") == order_id
        ),
        timeout=timeout,
    )


async def payments_of(order_id: str) -> list[dict]:
    rows = await fetch("payments", "SELECT id, status FROM payments WHERE order_id = $1", uuid.UUID(order_id))
    return [dict(row) for row in rows]


async def test_a_charge_taken_after_orders_gave_up_on_it_is_refunded_and_the_stock_released(
    stack, impatient_orders, admin_token, register_and_login
):
    product = create_product(stack, admin_token, price="43.21", stock=10)
    await inject(Decimal("86.42"), sleep_seconds=SLOW_SECONDS)
    response = httpx.post(
        impatient_orders.url + "/orders/",
        json=order_body(product["id"], 2),
        headers=auth(register_and_login("lost").token),
        timeout=30,
    )
    assert response.status_code == 201, response.text
    order = response.json()
    assert (order["status"], order["failure_reason"]) == (
        "failed",
        "payment failed: payments service timed out",
    )
    assert stock_of(stack, product["id"]) == 10  # released at once, whatever payments did
    assert await payments_of(order["order_id"]) == []  # not committed yet: the lookup could not have seen it

    # The background compensation looks again until the late charge shows up, then refunds it.
    compensated(impatient_orders, order["order_id"], timeout=SLOW_SECONDS + 15)
    assert [p["status"] for p in await payments_of(order["order_id"])] == ["refunded"]
    [row] = await fetch(
        "inventory", "SELECT status FROM reservations WHERE order_id = $1", uuid.UUID(order["order_id"])
    )
    assert row["status"] == "released" and stock_of(stack, product["id"]) == 10


async def test_a_charge_that_was_never_recorded_settles_after_the_grace_period_with_nothing_to_refund(
    stack, impatient_orders, admin_token, register_and_login
):
    product = create_product(stack, admin_token, price="51.00", stock=5)
    await inject(Decimal("51.00"), fail=True)  # payments answers 500: nothing recorded, but orders can't know
    response = httpx.post(
        impatient_orders.url + "/orders/",
        json=order_body(product["id"], 1),
        headers=auth(register_and_login("never").token),
        timeout=30,
    )
    order = response.json()
    assert (order["status"], order["failure_reason"]) == (
        "failed",
        "payment failed: payments service answered 500 unexpectedly",
    )
    assert stock_of(stack, product["id"]) == 5
    # No payment turned up within the grace period a late charge would need: nothing left to undo.
    compensated(impatient_orders, order["order_id"], timeout=LATE_CHARGE_GRACE_SECONDS + 10)
    assert await payments_of(order["order_id"]) == []


async def test_payments_lookup_by_order_is_read_only_and_for_services_only(
    stack, services, admin_token, register_and_login
):
    alice, bob = register_and_login("alice"), register_and_login("bob")
    order_id = str(uuid.uuid4())
    as_orders = auth(services.service_token("payments"))
    with httpx.Client(base_url=stack.payments.url, timeout=20) as payments:
        lookup = "/internal/payments"
        assert payments.get(lookup, params={"order_id": order_id}, headers=as_orders).json() == []
        charged = payments.post(
            lookup,
            json={"order_id": order_id, "amount": "10.00", "currency": "usd"},
            headers=as_orders | {"X-Acting-User": alice.token, "Idempotency-Key": order_id},
        )
        assert charged.status_code == 201
        found = payments.get(lookup, params={"order_id": order_id}, headers=as_orders)
        assert (found.status_code, found.json()) == (200, [charged.json()])
        for user in (alice.token, bob.token, admin_token):  # end users' tokens, whoever: 403
            assert payments.get(lookup, params={"order_id": order_id}, headers=auth(user)).status_code == 403
        # The public list is the caller's own: Alice sees it, Bob does not.
        assert payments.get(
            "/payments/", params={"order_id": order_id}, headers=auth(alice.token)
        ).json() == [charged.json()]
        assert payments.get("/payments/", params={"order_id": order_id}, headers=auth(bob.token)).json() == []
        for params in ({}, {"order_id": "not-a-uuid"}):
            answer = payments.get(lookup, params=params, headers=as_orders)
            assert answer.status_code == 422 and "order_id" in answer.text
        unauthenticated = payments.get(lookup, params={"order_id": order_id})
        assert unauthenticated.status_code == 401
    assert len(await payments_of(order_id)) == 1  # the lookups charged nothing
