"""Placing an order: the saga across users, inventory and payments, with compensation.

Steps: record the order (processing) → reserve stock (inventory) → take payment (payments, Idempotency-Key =
order id) → completed. That the caller is still active was checked with their token (service_kit.auth: the
issuer's answer, kept per user for ACTIVE_CHECK_SECONDS at most), not asked again per order. On a decline or any error after
the reservation, the reservation is released (and an authorized payment refunded: looked up read-only when the
charge's answer was lost) and the order is marked failed with a reason. Every remote step is idempotent per
order id, so a retried or resumed order repeats nothing: the same reservation and the same payment come back.
"""

from __future__ import annotations

import asyncio
import logging
import time
import uuid
from collections.abc import Sequence
from dataclasses import KW_ONLY, dataclass, replace
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from uuid import UUID

from orders_service.domain.errors import (
    DownstreamError,
    InsufficientStock,
    NotCancellable,
    OrderNotFound,
    ProductNotFound,
)
from orders_service.domain.in_flight import InFlight
from orders_service.domain.models import OrderRecord, OrderRequest, OrderStatus, PaymentResult
from orders_service.domain.ports import InventoryApi, OrderStore, PaymentsApi
from service_kit.auth import Principal
from service_kit.idempotency import replayed
from service_kit.limits import MAX_AMOUNT
from service_kit.metrics import SAGA_OUTCOMES

logger = logging.getLogger("orders.placement")

INTERNAL_FAILURE = "internal error while placing the order"
INTERRUPTED_PROCESSING = "interrupted while processing"


@dataclass
class _Progress:
    """What the flow has done so far, so compensation undoes exactly that."""

    reservation_requested: bool = False
    amount: Decimal | None = None
    charge_sent_at: float | None = None  # time.monotonic() when the charge was sent
    payment: PaymentResult | None = None  # the answer to the charge, or the payment a lookup found

    def payment_unknown(self) -> bool:
        return self.charge_sent_at is not None and self.payment is None


@dataclass
class OrderPlacement:
    """The order saga over its ports, one per app (core/lifespan.py).

    `late_charge_grace_seconds`: a charge whose answer was lost may still be running in payments (our call timed
    out, theirs did not): only a lookup this long after the charge was sent, finding no payment, proves nothing
    was taken. `compensation_retry_delays`: the waits of the background compensation after an unforeseen failure
    or an undo that could not be finished (a service down); after the last one an unfinished order is resumed
    when its client retries with its Idempotency-Key (or by the sweeper).
    """

    repository: OrderStore
    inventory: InventoryApi
    payments: PaymentsApi
    _: KW_ONLY
    in_flight: InFlight
    currency: str
    resume_after_seconds: float
    late_charge_grace_seconds: float
    compensation_retry_delays: Sequence[float]

    # --- reads ---------------------------------------------------------------------------------------------
    async def get(self, order_id: UUID, principal: Principal) -> OrderRecord:
        order = await self.repository.get(order_id)
        # Someone else's order is indistinguishable from a missing one.
        if order is None or not (principal.is_admin or order.user_id == principal.user_id):
            raise OrderNotFound
        return order

    async def page(self, principal: Principal, limit: int, offset: int) -> list[OrderRecord]:
        """The caller's orders, newest first (an admin's: everyone's)."""
        owner = None if principal.is_admin else principal.user_id
        return await self.repository.page(owner, limit, offset)

    # --- cancelling ----------------------------------------------------------------------------------------
    async def cancel(self, order_id: UUID, principal: Principal) -> OrderRecord:
        """completed → cancelled: refund the payment, give the stock back, then mark it. Idempotent: cancelling a
        cancelled order repeats the (idempotent) refund and release, so a cancellation cut short by an outage
        is finished by asking again. Pending/processing (still being placed) and failed (already undone) → 409."""
        order = await self.get(order_id, principal)
        if order.status is OrderStatus.FAILED:
            raise NotCancellable(
                "a failed order has nothing to cancel: its stock and payment were given back"
            )
        if not order.status.finished:
            raise NotCancellable("the order is still being placed; cancel it once it has completed")
        if order.payment_id is not None:
            await self.payments.refund(order.payment_id)
        await self.inventory.release(order.id)
        cancelled = await self.repository.cancel(order.id)
        if order.status is OrderStatus.COMPLETED:
            logger.info("order cancelled", extra={"order_id": str(order.id)})
            SAGA_OUTCOMES.labels("cancelled").inc()
        return cancelled or await self.repository.get(order.id)

    # --- recovering ----------------------------------------------------------------------------------------
    async def compensate_orphan(self, order: OrderRecord) -> OrderRecord:
        """Undo an order left processing by a flow that is gone (its process died, or its compensation gave
        up), as orders itself: look up and refund any payment, release the stock, mark it failed."""
        progress = _Progress(
            reservation_requested=True, charge_sent_at=time.monotonic() - self.late_charge_grace_seconds
        )
        failed = await self._compensate(order, progress, INTERRUPTED_PROCESSING)
        logger.info("stuck order compensated", extra={"order_id": str(order.id), "status": failed.status})
        return failed

    # --- placing -------------------------------------------------------------------------------------------
    async def place(
        self, principal: Principal, request: OrderRequest, idempotency_key: str | None
    ) -> tuple[OrderRecord, bool]:
        """Returns the order and whether this call created it (False: a replay of the same Idempotency-Key)."""
        fingerprint = request.fingerprint()
        if idempotency_key is not None:
            existing = await self.repository.by_key(principal.user_id, idempotency_key)
            if existing is not None:
                return await self._replay(existing, fingerprint, principal.token), False
        # Inserted as processing (no pending → processing write): should the insert's reply be lost, the sweeper
        # compensates the order once it is stuck (core/recovery.py), which undoes nothing that was never done.
        order = await self.repository.insert_processing(
            uuid.uuid4(),
            principal.user_id,
            request.product_id,
            request.quantity,
            request.shipping_address,
            idempotency_key,
            fingerprint,
        )
        if order is None:  # a concurrent request with the same key inserted first; the unique key decided
            existing = await self.repository.by_key(principal.user_id, idempotency_key)
            return await self._replay(existing, fingerprint, principal.token), False
        return await self._run(order, principal.token, started=True), True

    async def _replay(self, existing: OrderRecord, fingerprint: str, token: str) -> OrderRecord:
        replayed(existing, fingerprint, "order", "Idempotency-Key was already used with a different order")
        stale = datetime.now(UTC) - existing.updated_at > timedelta(seconds=self.resume_after_seconds)
        if not existing.status.finished and stale:
            # Its flow was interrupted (e.g. the process stopped mid-way): finish it now, with the caller's token.
            logger.warning("resuming interrupted order", extra={"order_id": str(existing.id)})
            return await self._run(existing, token)
        return existing

    async def _run(self, order: OrderRecord, token: str, *, started: bool = False) -> OrderRecord:
        """Drive the order to an end; `started`: it was just inserted as processing (else it is resumed)."""
        progress = _Progress()
        with self.in_flight.flow(order.id):
            return await self._run_tracked(order, token, progress, started)

    async def _run_tracked(
        self, order: OrderRecord, token: str, progress: _Progress, started: bool
    ) -> OrderRecord:
        try:
            processing = order if started else await self.repository.claim(order.id, order.updated_at)
            if processing is None:  # finished meanwhile, or the sweeper (or another retry) took it first
                return await self.repository.get(order.id)
            return await self._steps(processing, token, progress)
        except Exception:
            # Unforeseen (a bug, the orders database failing mid-flow): undo what may have happened and answer
            # with the failed order; if even that fails, keep retrying in the background and let the error out.
            logger.exception("order flow failed; compensating", extra={"order_id": str(order.id)})
            try:
                return await self._compensate(order, progress, INTERNAL_FAILURE)
            except Exception:
                self._compensate_later(order, progress, INTERNAL_FAILURE)
                raise
        except BaseException:  # cancelled (e.g. shutdown): finish the undo regardless
            SAGA_OUTCOMES.labels("cancelled").inc()
            self._compensate_later(order, progress, INTERNAL_FAILURE)
            raise

    async def _steps(self, order: OrderRecord, token: str, progress: _Progress) -> OrderRecord:
        progress.reservation_requested = True
        try:
            reservation = await self.inventory.reserve(order.id, order.product_id, order.quantity)
        except InsufficientStock:
            return await self._fail(order, "insufficient stock", progress, outcome="failed")
        except ProductNotFound:
            return await self._fail(order, "product not found", progress, outcome="failed")
        except DownstreamError as exc:
            # The reservation may have been made before the failure: release it (a no-op if it was not).
            return await self._compensate(order, progress, f"reservation failed: {exc.detail}")
        if reservation.status != "reserved":  # a resumed order whose reservation was already given back
            return await self._fail(order, f"reservation {reservation.status}", progress, outcome="failed")

        progress.amount = reservation.unit_price * order.quantity
        if progress.amount > MAX_AMOUNT:  # a price set before the bounds existed: never sent to payments
            return await self._compensate(order, progress, "amount exceeds the order limit")
        progress.charge_sent_at = time.monotonic()
        try:
            progress.payment = await self.payments.charge(token, order.id, progress.amount, self.currency)
        except DownstreamError as exc:
            # The outcome may be unknown (reset, timeout, 5xx): compensation looks the payment up.
            return await self._compensate(order, progress, f"payment failed: {exc.detail}")
        payment = progress.payment
        if not payment.authorized:
            reason = f"payment {payment.status}"
            if payment.decline_reason:
                reason += f": {payment.decline_reason}"
            return await self._compensate(order, progress, reason)

        completed = await self.repository.complete(order.id, progress.amount, payment.id)
        if completed is None:  # finished by someone else meanwhile (a concurrent resume, or the sweeper)
            current = await self.repository.get(order.id)
            if current is not None and current.status is not OrderStatus.COMPLETED:
                # Failed meanwhile (e.g. another replica's sweeper took it for stuck): our charge must not stay.
                await self._undo(order, progress)
            return current
        logger.info("order completed", extra={"order_id": str(order.id), "payment_id": str(payment.id)})
        SAGA_OUTCOMES.labels("completed").inc()
        return completed

    async def _fail(
        self, order: OrderRecord, reason: str, progress: _Progress, outcome: str | None = None
    ) -> OrderRecord:
        """Mark the order failed; `outcome` (failed: nothing to undo) is counted once the saga ends here."""
        payment_id = progress.payment.id if progress.payment else None
        failed = await self.repository.fail(order.id, reason, progress.amount, payment_id)
        logger.info("order failed", extra={"order_id": str(order.id), "reason": reason})
        if outcome is not None:
            SAGA_OUTCOMES.labels(outcome).inc()
        return failed or await self.repository.get(order.id)

    async def _compensate(self, order: OrderRecord, progress: _Progress, reason: str) -> OrderRecord:
        """Refund what was charged, give the stock back, then mark the order failed.

        The order is failed even when part of the undo could not be done yet (a service down, a charge whose
        outcome is unknown): what remains is retried in the background until it is done.
        """
        current = await self.repository.get(order.id)
        if current is not None and current.status is OrderStatus.COMPLETED:
            # E.g. "completed" was committed but the reply from the database was lost: nothing to undo.
            return current
        settled = await self._undo(order, progress)
        failed = await self._fail(order, reason, progress, outcome="compensated")
        if not settled:
            self._compensate_later(order, progress, reason)
        return failed

    async def _undo(self, order: OrderRecord, progress: _Progress) -> bool:
        """Refund and release, each idempotent; True when nothing is left to undo."""
        settled = True
        if progress.payment_unknown():
            settled = await self._look_up_payment(order, progress)
        payment = progress.payment
        if payment is not None and payment.authorized:
            try:
                await self.payments.refund(payment.id)
            except DownstreamError as exc:
                settled = False
                logger.error(
                    "refund failed during compensation",
                    extra={"order_id": str(order.id), "payment_id": str(payment.id), "error": exc.detail},
                )
            else:
                progress.payment = replace(payment, status="refunded")
                logger.info(
                    "payment refunded", extra={"order_id": str(order.id), "payment_id": str(payment.id)}
                )
        if progress.reservation_requested:
            try:
                await self.inventory.release(order.id)
            except DownstreamError as exc:
                settled = False
                logger.error(
                    "reservation release failed during compensation",
                    extra={"order_id": str(order.id), "error": exc.detail},
                )
            else:
                progress.reservation_requested = False  # released (or never made): nothing more to give back
        return settled

    async def _look_up_payment(self, order: OrderRecord, progress: _Progress) -> bool:
        """After a charge with an unknown outcome: find the payment, if one was taken. True when known."""
        try:
            found = await self.payments.for_order(order.id)
        except DownstreamError as exc:
            logger.warning(
                "payment lookup failed during compensation",
                extra={"order_id": str(order.id), "error": exc.detail},
            )
            return False
        authorized = [p for p in found if p.authorized]
        if authorized or found:
            progress.payment = (authorized or found)[0]
            return True
        # Nothing recorded yet; conclusive only once a charge still running in payments would have landed.
        return time.monotonic() - progress.charge_sent_at >= self.late_charge_grace_seconds

    def _compensate_later(self, order: OrderRecord, progress: _Progress, reason: str) -> None:
        if self.in_flight.compensating(order.id):
            return  # already being retried (this call came from that job)
        task = asyncio.create_task(self._compensate_with_retries(order, progress, reason))
        self.in_flight.hold(order.id, task)

    async def _compensate_with_retries(self, order: OrderRecord, progress: _Progress, reason: str) -> None:
        # Every compensation step is idempotent (lookup, refund, release, conditional status update).
        for delay in self.compensation_retry_delays:
            await asyncio.sleep(delay)
            try:
                current = await self.repository.get(order.id)
                if current is not None and current.status is OrderStatus.COMPLETED:
                    return
                settled = await self._undo(order, progress)
                await self._fail(order, reason, progress)
            except Exception as exc:
                logger.warning(
                    "compensation retry failed",
                    extra={"order_id": str(order.id), "error": type(exc).__name__},
                )
                continue
            if settled:
                logger.info("order compensated after retries", extra={"order_id": str(order.id)})
                return
        logger.error("compensation gave up; order left unsettled", extra={"order_id": str(order.id)})
