"""The sweeper: finds orders left pending/processing and drives what it can to a terminal state.

It runs at start-up and then every ORDER_SWEEP_INTERVAL_SECONDS, in the background (start-up and /health must
not wait for the database), and is cancelled on shutdown.

- pending for longer than ORDER_STUCK_AFTER_SECONDS: an order recorded before orders were inserted as
  processing, whose flow never started (it turned processing before anything was reserved or charged), so the
  order is failed; nothing needs undoing.
- processing, with its flow or its background compensation running in this process (`InFlight`,
  domain/in_flight.py): left to it; that job holds the customer's token the undo needs (and reported as left).
- processing, with nothing running here (its process died, its compensation gave up, or the reply to its insert
  was lost so its flow never started): compensated as orders itself (its service identity,
  service_kit.identity): any payment looked up and refunded, the stock released,
  the order failed "interrupted while processing"; what could not be undone yet (a service down) is retried in
  the background like any compensation.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass, field
from uuid import UUID

from orders_service.domain.placement import OrderPlacement

logger = logging.getLogger("orders.recovery")

INTERRUPTED = "interrupted before processing"


@dataclass
class SweepResult:
    pending_failed: int
    compensated: list[UUID] = field(default_factory=list)  # processing orphans undone and failed this round
    unsettled: list[UUID] = field(default_factory=list)  # orphans whose undo could not be finished yet
    left: list[UUID] = field(
        default_factory=list
    )  # as old, but their flow or compensation runs in this process


async def sweep(placement: OrderPlacement, stuck_after_seconds: float) -> SweepResult:
    repository = placement.repository
    ours = placement.in_flight.orders()
    failed = await repository.fail_stale_pending(stuck_after_seconds, INTERRUPTED, list(ours))
    result = SweepResult(failed)
    for stale in await repository.stale_processing(stuck_after_seconds):
        if stale.id in ours:
            result.left.append(stale.id)
            continue
        # Claimed first: a client's retry may be resuming it right now (here or in another replica).
        order = await repository.claim(stale.id, stale.updated_at)
        if order is None:
            result.left.append(stale.id)
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
    def __init__(
        self, placement: OrderPlacement, interval_seconds: float, stuck_after_seconds: float
    ) -> None:
        self.placement = placement
        self.interval_seconds = interval_seconds
        self.stuck_after_seconds = stuck_after_seconds

    async def run(self) -> None:
        while True:
            try:
                self._report(await sweep(self.placement, self.stuck_after_seconds))
            except Exception as exc:  # e.g. the database is down: try again next round
                logger.warning("order sweep skipped", extra={"error": type(exc).__name__})
            await asyncio.sleep(self.interval_seconds)

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
        if result.left:
            logger.info(
                "stuck orders left to this process",
                extra={"order_ids": [str(order_id) for order_id in result.left[:20]]},
            )
