"""Payments HTTP routes: thin, everything else lives in the domain service."""

from __future__ import annotations

from typing import Annotated
from uuid import UUID

from fastapi import APIRouter, Query, Response, status

from payments_service.core.deps import IdempotencyKey, PaymentServiceDep
from payments_service.domain.models import Payment, PaymentRequest
from service_kit.auth import CurrentPrincipal

router = APIRouter(prefix="/payments", tags=["payments"])

_ERRORS = {
    404: {"description": "No such payment visible to the caller"},
    409: {"description": "Order already paid, or payment not refundable"},
    422: {"description": "Invalid body, missing Idempotency-Key, or key reused with a different body"},
}


@router.post(
    "/",
    status_code=status.HTTP_201_CREATED,
    response_model=Payment,
    responses={
        200: {"model": Payment, "description": "Replay of an earlier request with the same key"},
        **_ERRORS,
    },
)
async def create_payment(
    body: PaymentRequest,
    idempotency_key: IdempotencyKey,
    principal: CurrentPrincipal,
    service: PaymentServiceDep,
    response: Response,
) -> Payment:
    record, created = await service.create(principal.user_id, idempotency_key, body)
    if not created:
        response.status_code = status.HTTP_200_OK
    return Payment.of(record)


@router.get(
    "/",
    response_model=list[Payment],
    description=(
        "The caller's payments for one order (an admin sees everyone's), oldest first; an empty list when there "
        "are none. Read-only: lets a client whose charge answer was lost find out whether it was taken."
    ),
)
async def payments_for_order(
    order_id: Annotated[UUID, Query(description="The order whose payments to list")],
    principal: CurrentPrincipal,
    service: PaymentServiceDep,
) -> list[Payment]:
    records = await service.for_order(order_id, principal.user_id, principal.is_admin)
    return [Payment.of(record) for record in records]


@router.get("/{payment_id}", response_model=Payment, responses=_ERRORS)
async def get_payment(payment_id: UUID, principal: CurrentPrincipal, service: PaymentServiceDep) -> Payment:
    return Payment.of(await service.get(payment_id, principal.user_id, principal.is_admin))


@router.post("/{payment_id}/refund", response_model=Payment, responses=_ERRORS)
async def refund_payment(
    payment_id: UUID, principal: CurrentPrincipal, service: PaymentServiceDep
) -> Payment:
    return Payment.of(await service.refund(payment_id, principal.user_id, principal.is_admin))
