"""What the payments logic needs from the outside, as protocols: the infrastructure implements them and
core/lifespan.py wires them in."""

from __future__ import annotations

from decimal import Decimal
from typing import Protocol
from uuid import UUID

from payments_service.domain.models import Authorization, PaymentRecord


class PaymentStore(Protocol):
    async def get(self, payment_id: UUID) -> PaymentRecord | None: ...

    async def by_key(self, owner_id: str, idempotency_key: str) -> PaymentRecord | None: ...

    async def for_order(self, order_id: UUID, owner_id: str | None) -> list[PaymentRecord]: ...

    async def page(
        self, owner_id: str | None, order_id: UUID | None, limit: int, offset: int
    ) -> list[PaymentRecord]: ...

    async def prior(
        self, owner_id: str, idempotency_key: str, order_id: UUID
    ) -> tuple[PaymentRecord | None, bool]:
        """Before a charge, in one query: the payment this owner's key already made (or None), and whether the
        order has an authorized payment."""
        ...

    async def insert(self, record: PaymentRecord) -> PaymentRecord | None:
        """None when this owner's key was taken concurrently; AuthorizedPaymentExists when the order was paid."""
        ...

    async def mark_refunded(self, payment_id: UUID) -> PaymentRecord | None: ...


class PaymentProvider(Protocol):
    """A card processor. A real one's client implements this; infrastructure/provider.py has the simulation."""

    async def authorize(self, *, idempotency_key: str, amount: Decimal, currency: str) -> Authorization:
        """Authorize a charge. The same idempotency key must yield the same authorization."""
        ...

    async def refund(self, *, reference: str, amount: Decimal, currency: str) -> str:
        """Refund (or void) an authorization; idempotent per reference. Returns the refund reference."""
        ...
