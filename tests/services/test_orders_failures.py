"""Orders' compensation when its own database fails mid-flow (injected for real with a Postgres trigger),
and the sweeper for orders left pending/processing (domain/recovery.py).

The trigger (installed in the orders test database for this module only) makes the UPDATE that finishes an
order raise for the products listed in `blocked_finish`, with the statuses listed there. Payment and stock are
then already taken, so orders must refund, release and mark the order failed; never leave it in processing.
"""

from __future__ import annotations

import asyncio
import uuid
from datetime import UTC, datetime, timedelta

import httpx
import pytest
from flow_support import create_product, fetch, order_body, start_all, stock_of
from harness import auth

from orders_service.domain.placement import INTERNAL_FAILURE, INTERRUPTED_PROCESSING
from orders_service.domain.recovery import INTERRUPTED

INSTALL = [
    "CREATE TABLE IF NOT EXISTS blocked_finish (product_id bigint PRIMARY KEY, statuses text[] NOT NULL)",
    """
    CREATE OR REPLACE FUNCTION block_finish() RETURNS trigger LANGUAGE plpgsql AS $$
    BEGIN
        IF EXISTS (SELECT 1 FROM blocked_finish WHERE product_id = NEW.product_id AND NEW.status = ANY (statuses))
        THEN RAISE EXCEPTION 'injected failure finishing order %', NEW.id;
        END IF;
        RETURN NEW;
    END $$
    """,
    "DROP TRIGGER IF EXISTS block_finish ON orders",
    "CREATE TRIGGER block_finish BEFORE UPDATE ON orders FOR EACH ROW EXECUTE FUNCTION block_finish()",
]
UNINSTALL = [
    "DROP TRIGGER IF EXISTS block_finish ON orders",
    "DROP FUNCTION IF EXISTS block_finish()",
    "DROP TABLE IF EXISTS blocked_finish",
]


@pytest.fixture(scope="module")
async def stack(services):
    stack = start_all(services)
    for statement in INSTALL:
        await fetch("orders", statement)
    yield stack
    for statement in UNINSTALL:
        await fetch("orders", statement)


async def block(product_id: int, statuses: list[str]) -> None:
    await fetch("orders", "INSERT INTO blocked_finish VALUES ($1, $2)", product_id, statuses)


async def unblock(product_id: int) -> None:
    await fetch("orders", "DELETE FROM blocked_finish WHERE product_id = $1", product_id)


async def payment_of(order_id: str) -> dict:
    [payment] = await fetch(
        "payments", "SELECT id, status FROM payments WHERE order_id = $1", uuid.UUID(order_id)
    )
    return dict(payment)


async def reservation_of(order_id: str) -> str:
    [row] = await fetch(
        "inventory", "SELECT status FROM reservations WHERE order_id = $1", uuid.UUID(order_id)
    )
    return row["status"]


async def test_failing_to_record_completion_refunds_releases_and_fails_the_order(
    stack, admin_token, register_and_login
):
    product = create_product(stack, admin_token, price="12.00", stock=10)
    await block(product["id"], ["completed"])
    response = httpx.post(
        stack.orders.url + "/orders/",
        json=order_body(product["id"], 2),
        headers=auth(register_and_login().token),
    )
    assert response.status_code == 201
    order = response.json()
    assert (order["status"], order["failure_reason"]) == ("failed", INTERNAL_FAILURE)
    assert (await payment_of(order["order_id"]))["status"] == "refunded"
    assert await reservation_of(order["order_id"]) == "released"
    assert stock_of(stack, product["id"]) == 10


async def test_when_even_failing_the_order_is_refused_it_is_finished_once_the_database_recovers(
    stack, admin_token, register_and_login
):
    product = create_product(stack, admin_token, price="12.00", stock=10)
    await block(product["id"], ["completed", "failed"])
    response = httpx.post(
        stack.orders.url + "/orders/",
        json=order_body(product["id"], 2),
        headers=auth(register_and_login().token),
    )
    assert (response.status_code, response.json()) == (500, {"detail": "internal server error"})
    [order] = await fetch(
        "orders", "SELECT id::text, status FROM orders WHERE product_id = $1", product["id"]
    )
    assert order["status"] == "processing"  # money and stock already given back; only the status is pending
    assert (await payment_of(order["id"]))["status"] == "refunded"
    assert stock_of(stack, product["id"]) == 10

    await unblock(product["id"])
    for _ in range(100):  # the background compensation retries with backoff (0.2 s, 0.5 s, 1 s, 2 s, ...)
        [row] = await fetch(
            "orders", "SELECT status, failure_reason FROM orders WHERE id = $1::uuid", order["id"]
        )
        if row["status"] != "processing":
            break
        await asyncio.sleep(0.1)
    assert (row["status"], row["failure_reason"]) == ("failed", INTERNAL_FAILURE)


SWEEPER_ENV = {"ORDER_SWEEP_INTERVAL_SECONDS": "0.3", "ORDER_STUCK_AFTER_SECONDS": "2"}


async def insert_order(
    user_id: str, status: str, updated_at: datetime, order_id: uuid.UUID | None = None
) -> uuid.UUID:
    order_id = order_id or uuid.uuid4()
    await fetch(
        "orders",
        """INSERT INTO orders (id, user_id, product_id, quantity, shipping_address, status, request_hash,
                               created_at, updated_at)
           VALUES ($1, $2, 1, 1, 'somewhere', $3, 'n/a', $4, $4)""",
        order_id,
        user_id,
        status,
        updated_at,
    )
    return order_id


async def status_when(order_id: uuid.UUID, done, timeout: float = 10.0) -> dict:
    for _ in range(int(timeout / 0.1)):
        [row] = await fetch("orders", "SELECT status, failure_reason FROM orders WHERE id = $1", order_id)
        if done(row):
            break
        await asyncio.sleep(0.1)
    return dict(row)


def sweep_reports(instance) -> list[dict]:
    return [line for line in instance.log_lines() if line.get("message") == "stuck orders found"]


async def test_the_sweeper_fails_stuck_pending_orders_and_compensates_orphaned_processing_ones(
    services, stack, admin_token, register_and_login
):
    """Orphaned processing orders (their process died mid-flow) are undone by the sweeper as orders itself: the
    reservation released, the payment refunded, the order failed. Before service identity it could only log them."""
    buyer = register_and_login("sweep")
    user_id = str(buyer.user["id"])
    product = create_product(stack, admin_token, price="4.00", stock=5)
    stale = datetime.now(UTC) - timedelta(hours=1)
    processing = uuid.uuid4()
    # What a flow that died after charging left behind: stock reserved, a payment authorized (made before the
    # order row, so no sweeper can take the order for stuck before they exist).
    reserved = httpx.post(
        stack.inventory.url + "/internal/reservations",
        json={"order_id": str(processing), "product_id": product["id"], "quantity": 2},
        headers=auth(services.service_token("inventory")),
    )
    assert reserved.status_code == 201, reserved.text
    charged = httpx.post(
        stack.payments.url + "/internal/payments",
        json={"order_id": str(processing), "amount": "8.00", "currency": "USD"},
        headers=auth(services.service_token("payments"))
        | {"X-Acting-User": buyer.token, "Idempotency-Key": str(processing)},
    )
    assert charged.status_code == 201 and charged.json()["status"] == "authorized", charged.text
    assert stock_of(stack, product["id"]) == 3
    pending = await insert_order(user_id, "pending", stale)
    await insert_order(user_id, "processing", stale, processing)
    instance = services.start_extra("orders", env=SWEEPER_ENV)
    try:
        row = await status_when(pending, lambda r: r["status"] != "pending")
        assert (row["status"], row["failure_reason"]) == ("failed", INTERRUPTED)
        row = await status_when(processing, lambda r: r["status"] != "processing")
        assert (row["status"], row["failure_reason"]) == ("failed", INTERRUPTED_PROCESSING)
        assert stock_of(stack, product["id"]) == 5
        [payment] = await fetch("payments", "SELECT status FROM payments WHERE order_id = $1", processing)
        assert payment["status"] == "refunded"
        # Reported by whichever sweeper got to it (the session's orders instance runs one too).
        reports = [r for o in (instance, stack.orders) for r in sweep_reports(o)]
        assert [r for r in reports if str(processing) in r.get("processing_compensated", [])], reports

        # Not only at start-up: an order that gets stuck while the service runs is failed once it is old enough.
        later = await insert_order(user_id, "pending", datetime.now(UTC))
        assert (await status_when(later, lambda r: True))[
            "status"
        ] == "pending"  # younger than 2 s: left alone
        row = await status_when(later, lambda r: r["status"] != "pending")
        assert (row["status"], row["failure_reason"]) == ("failed", INTERRUPTED)
    finally:
        services.stop(instance)


async def test_the_sweeper_leaves_an_order_to_the_compensation_running_in_its_process(
    services, stack, admin_token, register_and_login
):
    instance = services.start_extra("orders", env=SWEEPER_ENV)
    try:
        product = create_product(stack, admin_token, price="12.00", stock=10)
        await block(product["id"], ["completed", "failed"])
        response = httpx.post(
            instance.url + "/orders/",
            json=order_body(product["id"], 2),
            headers=auth(register_and_login().token),
        )
        assert response.status_code == 500
        [order] = await fetch("orders", "SELECT id FROM orders WHERE product_id = $1", product["id"])
        # The sweeper saw it stuck (older than ORDER_STUCK_AFTER_SECONDS) and left it to the compensation here.
        instance.wait_for_log(
            lambda line: (
                line.get("message") == "stuck orders left to this process"
                and str(order["id"]) in line.get("order_ids", [])
            ),
            timeout=20,
        )
        assert (await status_when(order["id"], lambda r: True))["status"] == "processing"
        assert not [
            r for r in sweep_reports(instance) if str(order["id"]) in r.get("processing_compensated", [])
        ]
        await unblock(product["id"])
        row = await status_when(order["id"], lambda r: r["status"] != "processing")
        assert (row["status"], row["failure_reason"]) == ("failed", INTERNAL_FAILURE)
        assert stock_of(stack, product["id"]) == 10
    finally:
        services.stop(instance)
