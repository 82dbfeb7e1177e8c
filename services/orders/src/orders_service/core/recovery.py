"""Start-up recovery for orders a previous process left unfinished.

A pending order never started its flow (nothing was reserved or charged), so it can simply be failed. A
processing order may hold stock or a payment, and undoing those calls needs the customer's token, which orders
does not keep: such orders are finished when their client retries with the same Idempotency-Key (see
`OrderPlacement._replay`); here they are only counted, so the operator sees them.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI

from orders_service.infrastructure.repository import OrdersRepository
from orders_service.settings import OrdersSettings

logger = logging.getLogger("orders.recovery")

INTERRUPTED = "interrupted before processing"


async def recover(repository: OrdersRepository, settings: OrdersSettings) -> tuple[int, int]:
    """Returns (pending orders failed, processing orders awaiting a retry)."""
    age = settings.order_resume_after_seconds
    failed = await repository.fail_stale_pending(age, INTERRUPTED)
    waiting = await repository.count_stale_processing(age)
    if failed or waiting:
        logger.warning(
            "unfinished orders found at start-up",
            extra={"pending_failed": failed, "processing_awaiting_retry": waiting},
        )
    return failed, waiting


async def _recover_quietly(app: FastAPI) -> None:
    try:
        await recover(OrdersRepository(app.state.db), app.state.settings)
    except Exception as exc:  # the database may be down at start-up; that must not stop the service
        logger.warning("start-up recovery skipped", extra={"error": type(exc).__name__})


@asynccontextmanager
async def recovery_extension(app: FastAPI) -> AsyncIterator[None]:
    # In the background: start-up (and /health) must not wait for the database.
    task = asyncio.create_task(_recover_quietly(app))
    try:
        yield
    finally:
        task.cancel()
