"""SQL access to the orders table (parametrized statements only).

Status changes are conditional on the order being unfinished, so a finished order is never rewritten.
"""

from __future__ import annotations

from decimal import Decimal
from uuid import UUID

import asyncpg

from orders_service.domain.models import OrderRecord, OrderStatus

_FIELDS = tuple(OrderRecord.__dataclass_fields__)


def _record(row: asyncpg.Record | None) -> OrderRecord | None:
    if row is None:
        return None
    values = {name: row[name] for name in _FIELDS}
    values["status"] = OrderStatus(values["status"])
    return OrderRecord(**values)


class OrdersRepository:
    def __init__(self, pool: asyncpg.Pool) -> None:
        self.pool = pool

    async def get(self, order_id: UUID) -> OrderRecord | None:
        return _record(await self.pool.fetchrow("SELECT * FROM orders WHERE id = $1", order_id))

    async def by_key(self, user_id: str, idempotency_key: str) -> OrderRecord | None:
        row = await self.pool.fetchrow(
            "SELECT * FROM orders WHERE user_id = $1 AND idempotency_key = $2", user_id, idempotency_key
        )
        return _record(row)

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
        """Insert an order, processing from the start; None when this user's key was taken concurrently (re-read
        by key)."""
        row = await self.pool.fetchrow(
            """
            INSERT INTO orders (id, user_id, product_id, quantity, shipping_address, status,
                                idempotency_key, request_hash)
            VALUES ($1, $2, $3, $4, $5, 'processing', $6, $7)
            ON CONFLICT ON CONSTRAINT orders_idempotency_key_per_user DO NOTHING
            RETURNING *
            """,
            order_id,
            user_id,
            product_id,
            quantity,
            shipping_address,
            idempotency_key,
            request_hash,
        )
        return _record(row)

    async def start_processing(self, order_id: UUID) -> OrderRecord | None:
        """pending/processing → processing (touching updated_at); None if the order is already finished."""
        row = await self.pool.fetchrow(
            """
            UPDATE orders SET status = 'processing', updated_at = now()
            WHERE id = $1 AND status IN ('pending', 'processing')
            RETURNING *
            """,
            order_id,
        )
        return _record(row)

    async def complete(self, order_id: UUID, amount: Decimal, payment_id: UUID) -> OrderRecord | None:
        row = await self.pool.fetchrow(
            """
            UPDATE orders SET status = 'completed', amount = $2, payment_id = $3, failure_reason = NULL,
                              updated_at = now()
            WHERE id = $1 AND status IN ('pending', 'processing')
            RETURNING *
            """,
            order_id,
            amount,
            payment_id,
        )
        return _record(row)

    async def fail(
        self, order_id: UUID, reason: str, amount: Decimal | None, payment_id: UUID | None
    ) -> OrderRecord | None:
        row = await self.pool.fetchrow(
            """
            UPDATE orders SET status = 'failed', failure_reason = $2,
                              amount = COALESCE($3, amount), payment_id = COALESCE($4, payment_id),
                              updated_at = now()
            WHERE id = $1 AND status IN ('pending', 'processing')
            RETURNING *
            """,
            order_id,
            reason,
            amount,
            payment_id,
        )
        return _record(row)

    async def cancel(self, order_id: UUID) -> OrderRecord | None:
        """completed → cancelled; None if it was not completed (e.g. already cancelled)."""
        row = await self.pool.fetchrow(
            "UPDATE orders SET status = 'cancelled', updated_at = now() "
            "WHERE id = $1 AND status = 'completed' RETURNING *",
            order_id,
        )
        return _record(row)

    async def page(self, user_id: str | None, limit: int, offset: int) -> list[OrderRecord]:
        """`user_id`'s orders (everyone's for None), newest first."""
        rows = await self.pool.fetch(
            "SELECT * FROM orders WHERE ($1::text IS NULL OR user_id = $1) "
            "ORDER BY created_at DESC, id LIMIT $2 OFFSET $3",
            user_id,
            limit,
            offset,
        )
        return [_record(row) for row in rows]

    async def fail_stale_pending(self, older_than_seconds: float, reason: str, exclude: list[UUID]) -> int:
        """Fail orders still pending (never started: nothing reserved or charged) after `older_than_seconds`,
        except `exclude` (orders whose flow is running here)."""
        rows = await self.pool.fetch(
            """
            UPDATE orders SET status = 'failed', failure_reason = $2, updated_at = now()
            WHERE status = 'pending' AND updated_at < now() - make_interval(secs => $1)
              AND NOT (id = ANY($3::uuid[]))
            RETURNING id
            """,
            older_than_seconds,
            reason,
            exclude,
        )
        return len(rows)

    async def stale_processing(self, older_than_seconds: float, limit: int = 100) -> list[OrderRecord]:
        """Orders processing for longer than `older_than_seconds`, oldest first."""
        rows = await self.pool.fetch(
            "SELECT * FROM orders WHERE status = 'processing' "
            "AND updated_at < now() - make_interval(secs => $1) ORDER BY updated_at LIMIT $2",
            older_than_seconds,
            limit,
        )
        return [_record(row) for row in rows]
