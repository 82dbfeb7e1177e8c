"""SQL access to the payments table (parametrized statements only): the `PaymentStore` port."""

from __future__ import annotations

from uuid import UUID

import asyncpg

from payments_service.domain.errors import AuthorizedPaymentExists
from payments_service.domain.models import PaymentRecord, PaymentStatus
from service_kit.records import KeyedRepository

_INSERT = """
INSERT INTO payments (id, owner_id, order_id, amount, currency, status, decline_reason,
                      provider_reference, idempotency_key, request_hash)
VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)
ON CONFLICT ON CONSTRAINT payments_idempotency_key_per_owner DO NOTHING
RETURNING *
"""
_MARK_REFUNDED = """
UPDATE payments SET status = 'refunded', refunded_at = now()
WHERE id = $1 AND status = 'authorized'
RETURNING *
"""


class PaymentRepository(KeyedRepository[PaymentRecord]):
    record = PaymentRecord
    convert = {"status": PaymentStatus}
    by_id_sql = "SELECT * FROM payments WHERE id = $1"
    by_key_sql = "SELECT * FROM payments WHERE owner_id = $1 AND idempotency_key = $2"

    async def for_order(self, order_id: UUID, owner_id: str | None) -> list[PaymentRecord]:
        """The payments recorded for an order, oldest first; only `owner_id`'s unless it is None (an admin)."""
        return await self.many(
            "SELECT * FROM payments WHERE order_id = $1 AND ($2::text IS NULL OR owner_id = $2) "
            "ORDER BY created_at, id",
            order_id,
            owner_id,
        )

    async def page(
        self, owner_id: str | None, order_id: UUID | None, limit: int, offset: int
    ) -> list[PaymentRecord]:
        return await self.many(
            "SELECT * FROM payments WHERE ($1::text IS NULL OR owner_id = $1) "
            "AND ($2::uuid IS NULL OR order_id = $2) ORDER BY created_at DESC, id LIMIT $3 OFFSET $4",
            owner_id,
            order_id,
            limit,
            offset,
        )

    async def prior(
        self, owner_id: str, idempotency_key: str, order_id: UUID
    ) -> tuple[PaymentRecord | None, bool]:
        """Before a charge, in one query: the payment this caller's key already made (or None), and whether the
        order has an authorized payment."""
        rows = await self.pool.fetch(
            "SELECT * FROM payments WHERE (owner_id = $1 AND idempotency_key = $2) "
            "OR (order_id = $3 AND status = 'authorized')",
            owner_id,
            idempotency_key,
            order_id,
        )
        mine = next(
            (r for r in rows if r["owner_id"] == owner_id and r["idempotency_key"] == idempotency_key), None
        )
        return self._record(mine), any(r["status"] == PaymentStatus.AUTHORIZED.value for r in rows)

    async def insert(self, record: PaymentRecord) -> PaymentRecord | None:
        """Insert; None when this caller's key was taken concurrently (the caller re-reads by key)."""
        try:
            return await self.one(
                _INSERT,
                record.id,
                record.owner_id,
                record.order_id,
                record.amount,
                record.currency,
                record.status.value,
                record.decline_reason,
                record.provider_reference,
                record.idempotency_key,
                record.request_hash,
            )
        except asyncpg.UniqueViolationError as exc:
            if exc.constraint_name == "payments_one_authorized_per_order":
                raise AuthorizedPaymentExists(str(record.order_id)) from exc
            raise

    async def mark_refunded(self, payment_id: UUID) -> PaymentRecord | None:
        """authorized → refunded; None if the payment was not authorized any more (e.g. refunded concurrently)."""
        return await self.one(_MARK_REFUNDED, payment_id)
