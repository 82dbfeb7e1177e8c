"""Helpers for the cross-service tests (test_flow*.py): all four services as separate uvicorn processes."""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal
from typing import Any

import asyncpg
import httpx
from harness import RunningService, ServiceStack, auth, database_url


@dataclass(frozen=True)
class Stack:
    users: RunningService
    inventory: RunningService
    orders: RunningService
    payments: RunningService


def start_all(services: ServiceStack) -> Stack:
    orders = services.start("orders")  # starts users, inventory and payments first
    return Stack(services.start("users"), services.start("inventory"), orders, services.start("payments"))


def create_product(stack: Stack, admin_token: str, *, price: str, stock: int, name: str = "widget") -> dict:
    response = httpx.post(
        stack.inventory.url + "/products/",
        json={"name": name, "price": price, "stock": stock},
        headers=auth(admin_token),
        timeout=10,
    )
    assert response.status_code == 201, response.text
    return response.json()


def stock_of(stack: Stack, product_id: int) -> int:
    response = httpx.get(f"{stack.inventory.url}/products/{product_id}", timeout=10)
    assert response.status_code == 200, response.text
    return response.json()["stock"]


def order_body(product_id: int, quantity: int = 1, address: str = "1 Main St, Springfield") -> dict[str, Any]:
    return {"product_id": product_id, "quantity": quantity, "shipping_address": address}


def money(value: str | float) -> Decimal:
    return Decimal(str(value)).quantize(Decimal("0.01"))


async def fetch(service: str, query: str, *args: Any) -> list[asyncpg.Record]:
    """Read a service's own database directly (to check invariants the APIs don't expose in bulk)."""
    conn = await asyncpg.connect(database_url(service), timeout=10)
    try:
        return await conn.fetch(query, *args)
    finally:
        await conn.close()
