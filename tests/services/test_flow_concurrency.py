"""100 concurrent orders for 40 units of stock, across the four services as separate processes.

20 users × 5 orders of one unit each, all in flight at once: exactly 40 complete, the stock ends at 0 (the
database refuses negative stock, and the reservations add up to 40), the other 60 fail cleanly, every completed
order has exactly one authorized payment, and replaying all 100 requests with their Idempotency-Keys creates
nothing new.
"""

from __future__ import annotations

import asyncio
import uuid
from collections import Counter
from concurrent.futures import ThreadPoolExecutor

import httpx
import pytest
from flow_support import create_product, fetch, order_body, start_all, stock_of
from harness import auth

USERS, ORDERS_PER_USER, STOCK = 20, 5, 40


@pytest.fixture(scope="module")
def stack(services):
    return start_all(services)


@pytest.fixture(scope="module")
def buyers(stack, register_and_login):
    # In parallel: registration and login each cost an argon2 hash in the users service.
    with ThreadPoolExecutor(max_workers=4) as pool:
        return list(pool.map(lambda _: register_and_login("crowd"), range(USERS)))


async def place_all(stack, requests):
    limits = httpx.Limits(max_connections=len(requests))
    async with httpx.AsyncClient(base_url=stack.orders.url, timeout=60, limits=limits) as client:
        return await asyncio.gather(
            *(
                client.post("/orders/", json=body, headers=auth(token) | {"Idempotency-Key": key})
                for token, key, body in requests
            )
        )


async def counts(order_ids: list[uuid.UUID]) -> dict[str, int]:
    orders = await fetch("orders", "SELECT count(*) AS n FROM orders WHERE id = ANY($1)", order_ids)
    payments = await fetch(
        "payments", "SELECT count(*) AS n FROM payments WHERE order_id = ANY($1)", order_ids
    )
    reservations = await fetch(
        "inventory", "SELECT count(*) AS n FROM reservations WHERE order_id = ANY($1)", order_ids
    )
    return {"orders": orders[0]["n"], "payments": payments[0]["n"], "reservations": reservations[0]["n"]}


async def test_100_concurrent_orders_for_40_units(stack, buyers, admin_token):
    product = create_product(stack, admin_token, price="3.50", stock=STOCK, name="limited edition")
    requests = [
        (buyer.token, uuid.uuid4().hex, order_body(product["id"], 1, f"{n} Crowd Lane"))
        for buyer in buyers
        for n in range(ORDERS_PER_USER)
    ]

    responses = await place_all(stack, requests)

    assert Counter(r.status_code for r in responses) == {201: USERS * ORDERS_PER_USER}
    orders = [r.json() for r in responses]
    outcomes = Counter((o["status"], o["failure_reason"]) for o in orders)
    assert outcomes == {
        ("completed", None): STOCK,
        ("failed", "insufficient stock"): USERS * ORDERS_PER_USER - STOCK,
    }
    assert stock_of(stack, product["id"]) == 0
    [held] = await fetch(
        "inventory",
        "SELECT coalesce(sum(quantity), 0) AS units, min(p.stock) AS stock FROM products p "
        "LEFT JOIN reservations r ON r.product_id = p.id AND r.status = 'reserved' WHERE p.id = $1",
        product["id"],
    )
    assert (held["units"], held["stock"]) == (STOCK, 0)

    order_ids = [uuid.UUID(o["order_id"]) for o in orders]
    completed = {
        uuid.UUID(o["order_id"]): uuid.UUID(o["payment_id"]) for o in orders if o["status"] == "completed"
    }
    authorized = await fetch(
        "payments",
        "SELECT order_id, id FROM payments WHERE status = 'authorized' AND order_id = ANY($1)",
        order_ids,
    )
    # Exactly one authorized payment per completed order, the one the order names; none for failed orders.
    assert sorted((r["order_id"], r["id"]) for r in authorized) == sorted(completed.items())
    some_order, some_payment = next(iter(completed.items()))
    seen_by_admin = httpx.get(
        f"{stack.payments.url}/payments/{some_payment}", headers=auth(admin_token)
    ).json()
    assert (seen_by_admin["order_id"], seen_by_admin["status"]) == (str(some_order), "authorized")

    before = await counts(order_ids)
    assert before == {"orders": 100, "payments": STOCK, "reservations": STOCK}

    replays = await place_all(stack, requests)

    assert Counter(r.status_code for r in replays) == {200: USERS * ORDERS_PER_USER}
    assert [r.json() for r in replays] == orders
    assert await counts(order_ids) == before
    assert stock_of(stack, product["id"]) == 0
