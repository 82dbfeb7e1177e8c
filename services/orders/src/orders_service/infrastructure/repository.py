"""SQL access to the orders table (parametrized statements only): the `OrderStore` port.

Status changes are conditional on the order being unfinished, so a finished order is never rewritten.
"""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from uuid import UUID

from orders_service.domain.models import OrderRecord, OrderStatus
from service_kit.records import KeyedRepository


class OrdersRepository(KeyedRepository[OrderRecord]):
    record = OrderRecord
    convert = {"status": OrderStatus}
    by_id_sql = "SELECT * FROM orders WHERE id = $1"
    by_key_sql = "SELECT * FROM orders WHERE user_id = $1 AND idempotency_key = $2"

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
        return await self.one(
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

    async def claim(self, order_id: UUID, seen_updated_at: datetime) -> OrderRecord | None:
        """pending/processing → processing, touching updated_at, only if nobody touched the order since it was read
        (`seen_updated_at`): of a resumed flow and the sweeper's compensation (in any replica), exactly one gets
        the order. None: finished meanwhile, or claimed by someone else."""
        return await self.one(
            """
            UPDATE orders SET status = 'processing', updated_at = now()
            WHERE id = $1 AND status IN ('pending', 'processing') AND updated_at = $2
            RETURNING *
            """,
            order_id,
            seen_updated_at,
        )

    async def complete(self, order_id: UUID, amount: Decimal, payment_id: UUID) -> OrderRecord | None:
        return await self.one(
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

    async def fail(
        self, order_id: UUID, reason: str, amount: Decimal | None, payment_id: UUID | None
    ) -> OrderRecord | None:
        return await self.one(
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

    async def cancel(self, order_id: UUID) -> OrderRecord | None:
        """completed → cancelled; None if it was not completed (e.g. already cancelled)."""
        return await self.one(
            "UPDATE orders SET status = 'cancelled', updated_at = now() "
            "WHERE id = $1 AND status = 'completed' RETURNING *",
            order_id,
        )

    async def page(self, user_id: str | None, limit: int, offset: int) -> list[OrderRecord]:
        """`user_id`'s orders (everyone's for None), newest first."""
        return await self.many(
            "SELECT * FROM orders WHERE ($1::text IS NULL OR user_id = $1) "
            "ORDER BY created_at DESC, id LIMIT $2 OFFSET $3",
            user_id,
            limit,
            offset,
        )

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
        return await self.many(
            "SELECT * FROM orders WHERE status = 'processing' "
            "AND updated_at < now() - make_interval(secs => $1) ORDER BY updated_at LIMIT $2",
            older_than_seconds,
            limit,
        )
