"""The sweeper: finds orders left pending/processing and drives what it can to a terminal state.

It runs at start-up and then every ORDER_SWEEP_INTERVAL_SECONDS, in the background (start-up and /health must
not wait for the database), and is cancelled on shutdown.

- pending for longer than ORDER_STUCK_AFTER_SECONDS: the flow never started (an order turns processing before
  anything is reserved or charged), e.g. the database crashed between the two writes or the insert's reply was
  lost, so the order is failed; nothing needs undoing.
- processing, with its flow or its background compensation running in this process
  (`placement.driven_here()`): left to it; that job holds the customer's token the undo needs.
- processing, with nothing running here (its process died, or its compensation gave up): undoing it needs the
  customer's token, which orders never stores. It is reported once, and finished when its client retries with
  the same Idempotency-Key after ORDER_RESUME_AFTER_SECONDS (see services/orders/README.md).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from uuid import UUID

from fastapi import FastAPI

from orders_service.domain.placement import driven_here
from orders_service.infrastructure.repository import OrdersRepository
from orders_service.settings import OrdersSettings

logger = logging.getLogger("orders.recovery")

INTERRUPTED = "interrupted before processing"


@dataclass
class SweepResult:
    pending_failed: int
    orphaned: list[UUID] = field(default_factory=list)  # processing, with nothing running here to finish them


async def sweep(repository: OrdersRepository, settings: OrdersSettings) -> SweepResult:
    age = settings.order_stuck_after_seconds
    ours = driven_here()
    failed = await repository.fail_stale_pending(age, INTERRUPTED, list(ours))
    orphaned = [order_id for order_id in await repository.stale_processing(age) if order_id not in ours]
    return SweepResult(failed, orphaned)


class Sweeper:
    def __init__(self, repository: OrdersRepository, settings: OrdersSettings) -> None:
        self.repository = repository
        self.settings = settings
        self._reported: set[UUID] = set()

    async def run(self) -> None:
        while True:
            try:
                self._report(await sweep(self.repository, self.settings))
            except Exception as exc:  # e.g. the database is down: try again next round
                logger.warning("order sweep skipped", extra={"error": type(exc).__name__})
            await asyncio.sleep(self.settings.order_sweep_interval_seconds)

    def _report(self, result: SweepResult) -> None:
        new = [order_id for order_id in result.orphaned if order_id not in self._reported]
        self._reported = set(result.orphaned)  # an orphan that got finished drops out; bounded by the query
        if result.pending_failed or new:
            logger.warning(
                "stuck orders found",
                extra={
                    "pending_failed": result.pending_failed,
                    "processing_awaiting_retry": len(result.orphaned),
                    "new_processing_order_ids": [str(order_id) for order_id in new[:20]],
                },
            )


@asynccontextmanager
async def recovery_extension(app: FastAPI) -> AsyncIterator[None]:
    sweeper = Sweeper(OrdersRepository(app.state.db), app.state.settings)
    task = asyncio.create_task(sweeper.run())
    try:
        yield
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
