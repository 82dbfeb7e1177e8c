"""SQL access to the payments table (parametrized statements only)."""

from __future__ import annotations

from uuid import UUID

import asyncpg

from payments_service.domain.models import PaymentRecord, PaymentStatus

_FIELDS = tuple(PaymentRecord.__dataclass_fields__)


class AuthorizedPaymentExists(Exception):
    """The order already has an authorized payment (partial unique index)."""


def _record(row: asyncpg.Record | None) -> PaymentRecord | None:
    if row is None:
        return None
    values = {name: row[name] for name in _FIELDS}
    values["status"] = PaymentStatus(values["status"])
    return PaymentRecord(**values)


class PaymentRepository:
    def __init__(self, pool: asyncpg.Pool) -> None:
        self.pool = pool

    async def get(self, payment_id: UUID) -> PaymentRecord | None:
        row = await self.pool.fetchrow("SELECT * FROM payments WHERE id = $1", payment_id)
        return _record(row)

    async def by_key(self, owner_id: str, idempotency_key: str) -> PaymentRecord | None:
        row = await self.pool.fetchrow(
            "SELECT * FROM payments WHERE owner_id = $1 AND idempotency_key = $2",
            owner_id,
            idempotency_key,
        )
        return _record(row)

    async def for_order(self, order_id: UUID, owner_id: str | None) -> list[PaymentRecord]:
        """The payments recorded for an order, oldest first; only `owner_id`'s unless it is None (an admin)."""
        rows = await self.pool.fetch(
            "SELECT * FROM payments WHERE order_id = $1 AND ($2::text IS NULL OR owner_id = $2) "
            "ORDER BY created_at, id",
            order_id,
            owner_id,
        )
        return [_record(row) for row in rows]

    async def page(
        self, owner_id: str | None, order_id: UUID | None, limit: int, offset: int
    ) -> list[PaymentRecord]:
        rows = await self.pool.fetch(
            "SELECT * FROM payments WHERE ($1::text IS NULL OR owner_id = $1) "
            "AND ($2::uuid IS NULL OR order_id = $2) ORDER BY created_at DESC, id LIMIT $3 OFFSET $4",
            owner_id,
            order_id,
            limit,
            offset,
        )
        return [_record(row) for row in rows]

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
        return _record(mine), any(r["status"] == PaymentStatus.AUTHORIZED.value for r in rows)

    async def insert(self, record: PaymentRecord) -> PaymentRecord | None:
        """Insert; None when this caller's key was taken concurrently (the caller re-reads by key)."""
        try:
            row = await self.pool.fetchrow(
                """
                INSERT INTO payments (id, owner_id, order_id, amount, currency, status, decline_reason,
                                      provider_reference, idempotency_key, request_hash)
                VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)
                ON CONFLICT ON CONSTRAINT payments_idempotency_key_per_owner DO NOTHING
                RETURNING *
                """,
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
        return _record(row)

    async def mark_refunded(self, payment_id: UUID) -> PaymentRecord | None:
        """authorized → refunded; None if the payment was not authorized any more (e.g. refunded concurrently)."""
        row = await self.pool.fetchrow(
            """
            UPDATE payments SET status = 'refunded', refunded_at = now()
            WHERE id = $1 AND status = 'authorized'
            RETURNING *
            """,
            payment_id,
        )
        return _record(row)
