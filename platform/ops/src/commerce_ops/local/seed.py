"""Demo data: a few products, created through the inventory API with the admin's token when it has none yet."""

from __future__ import annotations

import time

import asyncpg
import httpx

from commerce_ops.local.database import run_sync

DEMO_PRODUCTS = (
    {"name": "Espresso beans 1 kg", "price": "18.50", "stock": 120},
    {"name": "Pour-over kettle", "price": "49.00", "stock": 30},
    {"name": "Ceramic mug", "price": "9.90", "stock": 200},
    {"name": "Hand grinder", "price": "79.00", "stock": 15},
)


class SeedError(RuntimeError):
    pass


async def _product_count(inventory_database_url: str) -> int:
    conn = await asyncpg.connect(inventory_database_url, timeout=10)
    try:
        return await conn.fetchval("SELECT count(*) FROM products")
    finally:
        await conn.close()


def seed_products(
    inventory_database_url: str, users_url: str, inventory_url: str, admin_username: str, admin_password: str
) -> list[dict]:
    """Creates the demo products if the inventory database has no product; returns those created."""
    if run_sync(_product_count(inventory_database_url)) > 0:
        return []
    with httpx.Client(timeout=10) as http:
        # The users service creates the admin in the background right after start-up: give it a moment.
        deadline = time.monotonic() + 20
        while True:
            token = http.post(
                f"{users_url}/token", data={"username": admin_username, "password": admin_password}
            )
            if token.status_code == 200 or time.monotonic() > deadline:
                break
            time.sleep(0.2)
        if token.status_code != 200:
            raise SeedError(f"admin login failed ({token.status_code}): {token.text[:200]}")
        headers = {"Authorization": f"Bearer {token.json()['access_token']}"}
        created = []
        for product in DEMO_PRODUCTS:
            response = http.post(f"{inventory_url}/products/", json=product, headers=headers)
            if response.status_code != 201:
                raise SeedError(
                    f"creating demo product failed ({response.status_code}): {response.text[:200]}"
                )
            created.append(response.json())
        return created
