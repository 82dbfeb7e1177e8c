"""Inventory logic: cached product reads, admin writes that invalidate, and stock reservations for orders."""

from __future__ import annotations

from uuid import UUID

from inventory_service.domain.errors import ProductNotFound, ReservationConflict
from inventory_service.domain.models import (
    Product,
    ProductCreate,
    ProductPage,
    ProductUpdate,
    Reservation,
    ReservationRequest,
)
from inventory_service.domain.ports import InventoryStore, ProductCache


class Inventory:
    def __init__(self, repository: InventoryStore, cache: ProductCache | None) -> None:
        self.repository = repository
        self.cache = cache  # None when the product cache is disabled

    async def product_json(self, product_id: int) -> str:
        """The product as the JSON document the API answers with: on a cache hit, the cached text as it is
        (no parse, no model, no re-serialisation); on a miss, the model's JSON, which is also what gets cached."""
        if self.cache is not None:
            cached = await self.cache.get_text(product_id)  # only entries that pass is_canonical_product
            if cached is not None:
                return cached
        document = await self.repository.product_json(product_id)
        if document is None:
            # Misses are not cached: a product created a moment later must be visible at once.
            raise ProductNotFound
        if self.cache is not None:
            await self.cache.set_text(product_id, document)
        return document

    async def page(self, limit: int, after: int, name: str | None) -> ProductPage:
        """A page of products by id (read from Postgres: lists are not cached)."""
        products = await self.repository.products(limit + 1, after, name)
        more = len(products) > limit
        items = products[:limit]
        return ProductPage(items=items, next_after=items[-1].id if more else None)

    async def create(self, data: ProductCreate) -> Product:
        product = await self.repository.create_product(data.name, data.price, data.stock)
        await self._invalidate(product.id)
        return product

    async def update(self, product_id: int, data: ProductUpdate) -> Product:
        product = await self.repository.update_product(product_id, data.name, data.price, data.stock)
        if product is None:
            raise ProductNotFound
        await self._invalidate(product_id)
        return product

    async def reserve(self, request: ReservationRequest) -> tuple[Reservation, bool]:
        reservation, created = await self.repository.reserve(
            request.order_id, request.product_id, request.quantity
        )
        if created:
            await self._invalidate(reservation.product_id)
        elif (reservation.product_id, reservation.quantity) != (request.product_id, request.quantity):
            raise ReservationConflict
        return reservation, created

    async def release(self, order_id: UUID) -> Reservation:
        reservation, released = await self.repository.release(order_id)
        if released:
            await self._invalidate(reservation.product_id)
        return reservation

    async def _invalidate(self, product_id: int) -> None:
        if self.cache is not None:
            await self.cache.delete(product_id)


def is_canonical_product(document: str) -> bool:
    """Whether a cached entry is exactly what a miss would produce now. Anything else (bad JSON, an old shape,
    extra fields) is a miss and gets overwritten; both pydantic-core steps cost microseconds. The product cache
    runs it on every entry it reads from Redis (`JsonCache(accept=...)`, core/lifespan.py)."""
    try:
        return Product.model_validate_json(document).model_dump_json() == document
    except ValueError:
        return False
