"""Taking and refunding payments: idempotency per caller, one authorized payment per order."""

from __future__ import annotations

import logging
import uuid
from dataclasses import replace
from uuid import UUID

from payments_service.domain.errors import (
    AuthorizedPaymentExists,
    OrderAlreadyPaid,
    PaymentNotFound,
)
from payments_service.domain.models import PaymentRecord, PaymentRequest, PaymentStatus
from payments_service.domain.ports import PaymentProvider, PaymentStore
from service_kit.errors import Conflict
from service_kit.idempotency import replayed
from service_kit.metrics import PAYMENT_AUTHORIZATIONS

logger = logging.getLogger("payments.service")


class PaymentService:
    def __init__(self, repository: PaymentStore, provider: PaymentProvider) -> None:
        self.repository = repository
        self.provider = provider

    async def create(
        self, owner_id: str, idempotency_key: str, request: PaymentRequest
    ) -> tuple[PaymentRecord, bool]:
        """Charge once per (caller, key). Returns the payment and whether it was created by this call."""
        fingerprint = request.fingerprint()
        existing, paid = await self.repository.prior(owner_id, idempotency_key, request.order_id)
        if existing is not None:
            return self._replay(existing, fingerprint), False
        if paid:
            # Possibly by a concurrent request with this same key that committed a moment ago.
            return await self._same_key_or_already_paid(
                owner_id, idempotency_key, request, fingerprint
            ), False

        # The provider sees a key scoped to the caller, so two callers' equal keys never share a charge.
        provider_key = f"{owner_id}:{idempotency_key}"
        authorization = await self.provider.authorize(
            idempotency_key=provider_key, amount=request.amount, currency=request.currency
        )
        PAYMENT_AUTHORIZATIONS.labels("authorized" if authorization.approved else "declined").inc()
        record = PaymentRecord(
            id=uuid.uuid4(),
            owner_id=owner_id,
            order_id=request.order_id,
            amount=request.amount,
            currency=request.currency,
            status=PaymentStatus.AUTHORIZED if authorization.approved else PaymentStatus.DECLINED,
            decline_reason=authorization.decline_reason,
            provider_reference=authorization.reference,
            idempotency_key=idempotency_key,
            request_hash=fingerprint,
        )
        try:
            inserted = await self.repository.insert(record)
        except AuthorizedPaymentExists:
            # The same key may have won the race (its row can trip the per-order index before the key's): that
            # payment is this request's and its authorization is ours too (same provider key): keep it.
            winner = await self.repository.by_key(owner_id, idempotency_key)
            if winner is not None:
                return self._replay(winner, fingerprint), False
            # Another key won the race for this order: void our authorization so the customer is charged once.
            await self.provider.refund(
                reference=authorization.reference, amount=request.amount, currency=request.currency
            )
            raise OrderAlreadyPaid(request.order_id) from None
        if inserted is None:
            # The same key raced us and won; the provider gave both calls the same authorization, so keep it.
            winner = await self.repository.by_key(owner_id, idempotency_key)
            return self._replay(winner, fingerprint), False
        logger.info(
            "payment recorded",
            extra={
                "payment_id": str(inserted.id),
                "order_id": str(inserted.order_id),
                "status": inserted.status,
            },
        )
        return inserted, True

    async def _same_key_or_already_paid(
        self, owner_id: str, idempotency_key: str, request: PaymentRequest, fingerprint: str
    ) -> PaymentRecord:
        existing = await self.repository.by_key(owner_id, idempotency_key)
        if existing is not None:
            return self._replay(existing, fingerprint)
        raise OrderAlreadyPaid(request.order_id)

    @staticmethod
    def _replay(existing: PaymentRecord, fingerprint: str) -> PaymentRecord:
        return replayed(
            existing, fingerprint, "payment", "Idempotency-Key was already used with a different request body"
        )

    async def get(self, payment_id: UUID, owner_id: str, is_admin: bool) -> PaymentRecord:
        record = await self.repository.get(payment_id)
        # Someone else's payment looks exactly like a missing one.
        if record is None or not (is_admin or record.owner_id == owner_id):
            raise PaymentNotFound
        return record

    async def for_order(self, order_id: UUID) -> list[PaymentRecord]:
        """A read-only lookup, so a caller that lost a charge's answer can learn whether it was taken."""
        return await self.repository.for_order(order_id, None)

    async def page(
        self, owner_id: str | None, order_id: UUID | None, limit: int, offset: int
    ) -> list[PaymentRecord]:
        """`owner_id`'s payments (everyone's for None), newest first."""
        return await self.repository.page(owner_id, order_id, limit, offset)

    async def refund(self, payment_id: UUID) -> PaymentRecord:
        """Refund (idempotent). Only order cancellation/compensation (orders) or an admin gets here."""
        record = await self.repository.get(payment_id)
        if record is None:
            raise PaymentNotFound
        if record.status is PaymentStatus.REFUNDED:
            return record
        if record.status is PaymentStatus.DECLINED:
            raise Conflict("a declined payment cannot be refunded: nothing was charged")
        await self.provider.refund(
            reference=record.provider_reference, amount=record.amount, currency=record.currency
        )
        refunded = await self.repository.mark_refunded(payment_id)
        if refunded is None:  # refunded concurrently; the provider refund is idempotent per reference
            refunded = replace(record, status=PaymentStatus.REFUNDED)
        logger.info(
            "payment refunded", extra={"payment_id": str(payment_id), "order_id": str(record.order_id)}
        )
        return refunded
