"""What the order flow needs from the outside, as protocols: the infrastructure implements them (the orders
table, and the HTTP clients of inventory and payments) and core/lifespan.py wires them in."""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from typing import Protocol
from uuid import UUID

from orders_service.domain.models import OrderRecord, PaymentResult, Reservation


class OrderStore(Protocol):
    """Status changes are conditional on the order being unfinished: they return None for a finished one."""

    async def get(self, order_id: UUID) -> OrderRecord | None: ...

    async def by_key(self, user_id: str, idempotency_key: str) -> OrderRecord | None: ...

    async def insert_processing(
        self,
        order_id: UUID,
        user_id: str,
        product_id: int,
        quantity: int,
        shipping_address: str,
        idempotency_key: str | None,
        request_hash: str,
    ) -> OrderRecord | None:
        """The order, processing from the start; None when this user's key was taken concurrently."""
        ...

    async def claim(self, order_id: UUID, seen_updated_at: datetime) -> OrderRecord | None: ...

    async def complete(self, order_id: UUID, amount: Decimal, payment_id: UUID) -> OrderRecord | None: ...

    async def fail(
        self, order_id: UUID, reason: str, amount: Decimal | None, payment_id: UUID | None
    ) -> OrderRecord | None: ...

    async def cancel(self, order_id: UUID) -> OrderRecord | None: ...

    async def page(self, user_id: str | None, limit: int, offset: int) -> list[OrderRecord]: ...

    async def fail_stale_pending(
        self, older_than_seconds: float, reason: str, exclude: list[UUID]
    ) -> int: ...

    async def stale_processing(self, older_than_seconds: float, limit: int = 100) -> list[OrderRecord]: ...


# The services orders calls. Failures are domain errors (DownstreamError, DownstreamUnavailable, ...).
class InventoryApi(Protocol):
    async def reserve(self, order_id: UUID, product_id: int, quantity: int) -> Reservation:
        """Idempotent per order id; InsufficientStock or ProductNotFound when it cannot be made."""
        ...

    async def release(self, order_id: UUID) -> None: ...


class PaymentsApi(Protocol):
    async def charge(
        self, customer_token: str, order_id: UUID, amount: Decimal, currency: str
    ) -> PaymentResult: ...

    async def for_order(self, order_id: UUID) -> list[PaymentResult]: ...

    async def refund(self, payment_id: UUID) -> None: ...
