"""What the inventory logic needs from the outside, as protocols: the infrastructure implements them and
core/lifespan.py wires them in."""

from __future__ import annotations

from decimal import Decimal
from typing import Protocol
from uuid import UUID

from inventory_service.domain.models import Product, Reservation


class InventoryStore(Protocol):
    async def product_json(self, product_id: int) -> str | None:
        """The product as the API's JSON document, or None."""
        ...

    async def products(self, limit: int, after: int, name: str | None) -> list[Product]: ...

    async def create_product(self, name: str, price: Decimal, stock: int) -> Product: ...

    async def update_product(
        self, product_id: int, name: str | None, price: Decimal | None, stock: int | None
    ) -> Product | None: ...

    async def reserve(self, order_id: UUID, product_id: int, quantity: int) -> tuple[Reservation, bool]:
        """(reservation, created now); InsufficientStock or ProductNotFound when it cannot be made."""
        ...

    async def release(self, order_id: UUID) -> tuple[Reservation, bool]:
        """(reservation, released now); ReservationNotFound when the order never reserved."""
        ...


class ProductCache(Protocol):
    """Product documents by id (fails open: a cache outage is a miss)."""

    async def get_text(self, key: str | int) -> str | None: ...

    async def set_text(self, key: str | int, document: str) -> None: ...

    async def delete(self, key: str | int) -> bool: ...
