"""The sweeper: finds orders left pending/processing and drives what it can to a terminal state.

It runs at start-up and then every ORDER_SWEEP_INTERVAL_SECONDS, in the background (start-up and /health must
not wait for the database), and is cancelled on shutdown.

- pending for longer than ORDER_STUCK_AFTER_SECONDS: an order recorded before orders were inserted as
  processing, whose flow never started (it turned processing before anything was reserved or charged), so the
  order is failed; nothing needs undoing.
- processing, with its flow or its background compensation running in this process
  (`placement.driven_here()`): left to it; that job holds the customer's token the undo needs.
- processing, with nothing running here (its process died, its compensation gave up, or the reply to its insert
  was lost so its flow never started): compensated as orders itself (its service identity, service_kit.identity): any payment looked up and refunded, the stock released,
  the order failed "interrupted while processing"; what could not be undone yet (a service down) is retried in
  the background like any compensation.
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

from orders_service.core.deps import build_placement
from orders_service.domain.placement import OrderPlacement, driven_here
from orders_service.settings import OrdersSettings
from service_kit.identity import ServiceTokens

logger = logging.getLogger("orders.recovery")

INTERRUPTED = "interrupted before processing"


@dataclass
class SweepResult:
    pending_failed: int
    compensated: list[UUID] = field(default_factory=list)  # processing orphans undone and failed this round
    unsettled: list[UUID] = field(default_factory=list)  # orphans whose undo could not be finished yet


async def sweep(placement: OrderPlacement, settings: OrdersSettings) -> SweepResult:
    repository = placement.repository
    age = settings.order_stuck_after_seconds
    ours = driven_here()
    failed = await repository.fail_stale_pending(age, INTERRUPTED, list(ours))
    result = SweepResult(failed)
    for order in await repository.stale_processing(age):
        if order.id in ours:
            continue
        try:
            await placement.compensate_orphan(order)
        except Exception as exc:  # e.g. the orders database failed mid-way: next round tries again
            logger.warning(
                "stuck order not compensated yet",
                extra={"order_id": str(order.id), "error": type(exc).__name__},
            )
            result.unsettled.append(order.id)
        else:
            result.compensated.append(order.id)
    return result


class Sweeper:
    def __init__(self, placement: OrderPlacement, settings: OrdersSettings) -> None:
        self.placement = placement
        self.settings = settings

    async def run(self) -> None:
        while True:
            try:
                self._report(await sweep(self.placement, self.settings))
            except Exception as exc:  # e.g. the database is down: try again next round
                logger.warning("order sweep skipped", extra={"error": type(exc).__name__})
            await asyncio.sleep(self.settings.order_sweep_interval_seconds)

    @staticmethod
    def _report(result: SweepResult) -> None:
        if result.pending_failed or result.compensated or result.unsettled:
            logger.warning(
                "stuck orders found",
                extra={
                    "pending_failed": result.pending_failed,
                    "processing_compensated": [str(order_id) for order_id in result.compensated[:20]],
                    "processing_unsettled": [str(order_id) for order_id in result.unsettled[:20]],
                },
            )


@asynccontextmanager
async def recovery_extension(app: FastAPI) -> AsyncIterator[None]:
    # Orders' own identity towards inventory and payments (client credentials at the users service).
    app.state.service_tokens = ServiceTokens.from_settings(app.state.settings, app.state.http)
    sweeper = Sweeper(build_placement(app.state), app.state.settings)
    task = asyncio.create_task(sweeper.run())
    try:
        yield
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
