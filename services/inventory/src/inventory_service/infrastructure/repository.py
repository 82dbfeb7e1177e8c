"""Products and reservations in Postgres (asyncpg, parametrized SQL only).

Stock only ever changes through one conditional UPDATE per reservation or release, inside the transaction that
records it: concurrent reservations can't oversell and a repeated request can't apply twice.
"""

from __future__ import annotations

from decimal import Decimal
from uuid import UUID

import asyncpg

from inventory_service.domain.errors import InsufficientStock, ProductNotFound, ReservationNotFound
from inventory_service.domain.models import Product, Reservation
from service_kit.records import Repository

_PRODUCT = "SELECT id, name, price, stock FROM products WHERE id = $1"
# `name` is matched as a literal substring: LIKE's wildcards in it are escaped.
_PRODUCTS = """
SELECT id, name, price, stock FROM products
WHERE id > $2 AND ($3::text IS NULL OR name ILIKE '%' || replace(replace(replace($3, '\\', '\\\\'), '%', '\\%'), '_', '\\_') || '%')
ORDER BY id LIMIT $1
"""
_PRODUCT_EXISTS = "SELECT EXISTS (SELECT 1 FROM products WHERE id = $1)"
_INSERT_PRODUCT = """
INSERT INTO products (name, price, stock) VALUES ($1, $2, $3) RETURNING id, name, price, stock
"""
# Fields left out of a PATCH arrive as NULL and keep their value (the columns are NOT NULL).
_UPDATE_PRODUCT = """
UPDATE products
SET name = COALESCE($2, name), price = COALESCE($3, price), stock = COALESCE($4, stock), updated_at = now()
WHERE id = $1
RETURNING id, name, price, stock
"""
_TAKE_STOCK = """
UPDATE products SET stock = stock - $1, updated_at = now()
WHERE id = $2 AND stock >= $1
RETURNING price
"""
_RETURN_STOCK = "UPDATE products SET stock = stock + $1, updated_at = now() WHERE id = $2"
_RESERVATION = """
SELECT order_id, product_id, quantity, unit_price, status FROM reservations WHERE order_id = $1
"""
# A concurrent request for the same order that committed first makes this insert nothing.
_INSERT_RESERVATION = """
INSERT INTO reservations (order_id, product_id, quantity, unit_price, status)
VALUES ($1, $2, $3, $4, 'reserved')
ON CONFLICT (order_id) DO NOTHING
RETURNING order_id, product_id, quantity, unit_price, status
"""
# Only a reservation still held can be released: this row lock makes the stock go back exactly once.
_RELEASE = """
UPDATE reservations SET status = 'released', released_at = now()
WHERE order_id = $1 AND status = 'reserved'
RETURNING order_id, product_id, quantity, unit_price, status
"""


class _ReservedConcurrently(Exception):
    """Raised inside the transaction to roll back the stock taken for an order that holds a reservation already."""


def _reservation(row: asyncpg.Record | None) -> Reservation | None:
    return None if row is None else Reservation(**dict(row))


class InventoryRepository(Repository[Product]):
    """The `InventoryStore` port."""

    record = Product

    async def product(self, product_id: int) -> Product | None:
        return await self.one(_PRODUCT, product_id)

    async def products(self, limit: int, after: int, name: str | None) -> list[Product]:
        return await self.many(_PRODUCTS, limit, after, name)

    async def product_json(self, product_id: int) -> str | None:
        """The product as the API's JSON, straight from the row: the columns already have the model's types
        (bigint, text, numeric, integer), so it is serialised without validating a model first."""
        row = await self.pool.fetchrow(_PRODUCT, product_id)
        return None if row is None else Product.model_construct(**row).model_dump_json()

    async def create_product(self, name: str, price: Decimal, stock: int) -> Product:
        return await self.one(_INSERT_PRODUCT, name, price, stock)

    async def update_product(
        self, product_id: int, name: str | None, price: Decimal | None, stock: int | None
    ) -> Product | None:
        return await self.one(_UPDATE_PRODUCT, product_id, name, price, stock)

    async def reservation(self, order_id: UUID) -> Reservation | None:
        return _reservation(await self.pool.fetchrow(_RESERVATION, order_id))

    async def reserve(self, order_id: UUID, product_id: int, quantity: int) -> tuple[Reservation, bool]:
        """(reservation, created now). Existing reservations for the order are returned untouched.

        No lookup first (a new order's reservation is the usual case: one round trip less per order): when the
        order holds a reservation already, the insert finds it and the stock this attempt took is rolled back."""
        try:
            async with self.pool.acquire() as conn, conn.transaction():
                price = await conn.fetchval(_TAKE_STOCK, quantity, product_id)
                if price is None:
                    existing = await conn.fetchrow(_RESERVATION, order_id)
                    if existing is not None:  # a repeat, after the stock ran out or the product went
                        return _reservation(existing), False
                    if await conn.fetchval(_PRODUCT_EXISTS, product_id):
                        raise InsufficientStock
                    raise ProductNotFound
                created = await conn.fetchrow(_INSERT_RESERVATION, order_id, product_id, quantity, price)
                if created is None:  # reserved before (a repeat) or concurrently: roll the stock back
                    raise _ReservedConcurrently
                return _reservation(created), True
        except _ReservedConcurrently:
            return await self.reservation(order_id), False

    async def release(self, order_id: UUID) -> tuple[Reservation, bool]:
        """(reservation, released now). Stock is returned only by the call that flips the status."""
        async with self.pool.acquire() as conn, conn.transaction():
            released = await conn.fetchrow(_RELEASE, order_id)
            if released is not None:
                await conn.execute(_RETURN_STOCK, released["quantity"], released["product_id"])
                return _reservation(released), True
            existing = await conn.fetchrow(_RESERVATION, order_id)
        if existing is None:
            raise ReservationNotFound
        return _reservation(existing), False
