"""Orders' compensation when its own database fails mid-flow (injected for real with a Postgres trigger),
and the start-up recovery pass for orders a previous process left unfinished.

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

from orders_service.core.recovery import INTERRUPTED
from orders_service.domain.placement import INTERNAL_FAILURE

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
    [payment] = await fetch("payments", "SELECT id, status FROM payments WHERE order_id = $1", uuid.UUID(order_id))
    return dict(payment)


async def reservation_of(order_id: str) -> str:
    [row] = await fetch("inventory", "SELECT status FROM reservations WHERE order_id = $1", uuid.UUID(order_id))
    return row["status"]


async def test_failing_to_record_completion_refunds_releases_and_fails_the_order(
    stack, admin_token, register_and_login
):
    product = create_product(stack, admin_token, price="12.00", stock=10)
    await block(product["id"], ["completed"])
    response = httpx.post(
        stack.orders.url + "/orders/", json=order_body(product["id"], 2), headers=auth(register_and_login().token)
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
        stack.orders.url + "/orders/", json=order_body(product["id"], 2), headers=auth(register_and_login().token)
    )
    assert (response.status_code, response.json()) == (500, {"detail": "internal server error"})
    [order] = await fetch("orders", "SELECT id::text, status FROM orders WHERE product_id = $1", product["id"])
    assert order["status"] == "processing"  # money and stock already given back; only the status is pending
    assert (await payment_of(order["id"]))["status"] == "refunded"
    assert stock_of(stack, product["id"]) == 10

    await unblock(product["id"])
    for _ in range(100):  # the background compensation retries with backoff (0.2 s, 0.5 s, 1 s, 2 s, ...)
        [row] = await fetch("orders", "SELECT status, failure_reason FROM orders WHERE id = $1::uuid", order["id"])
        if row["status"] != "processing":
            break
        await asyncio.sleep(0.1)
    assert (row["status"], row["failure_reason"]) == ("failed", INTERNAL_FAILURE)


async def test_start_up_fails_stale_pending_orders_and_reports_stale_processing_ones(
    services, stack, register_and_login
):
    buyer = register_and_login("restart")
    stale = datetime.now(UTC) - timedelta(hours=1)
    pending, processing = uuid.uuid4(), uuid.uuid4()
    for order_id, status in ((pending, "pending"), (processing, "processing")):
        await fetch(
            "orders",
            """INSERT INTO orders (id, user_id, product_id, quantity, shipping_address, status, request_hash,
                                   created_at, updated_at)
               VALUES ($1, $2, 1, 1, 'somewhere', $3, 'n/a', $4, $4)""",
            order_id, str(buyer.user["id"]), status, stale,
        )
    instance = services.start_extra("orders")  # a restarted orders process runs the recovery pass
    try:
        for _ in range(100):
            [row] = await fetch("orders", "SELECT status, failure_reason FROM orders WHERE id = $1", pending)
            if row["status"] != "pending":
                break
            await asyncio.sleep(0.1)
        assert (row["status"], row["failure_reason"]) == ("failed", INTERRUPTED)
        # A processing order may hold stock and a payment: it waits for its client's retry, and is reported.
        [row] = await fetch("orders", "SELECT status FROM orders WHERE id = $1", processing)
        assert row["status"] == "processing"
        [report] = [line for line in instance.log_lines() if line["message"] == "unfinished orders found at start-up"]
        assert report["pending_failed"] >= 1 and report["processing_awaiting_retry"] >= 1
    finally:
        services.stop(instance)
        await fetch("orders", "DELETE FROM orders WHERE id = $1", processing)
