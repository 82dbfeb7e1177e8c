"""Payments HTTP routes: thin, everything else lives in the domain service.

Public (`/payments`): a customer reads their own payments; refunds are an admin's. Internal
(`/internal/payments`, service identity only, not routed by the Ingress or the gateway): orders takes the
payment for an order on the customer's behalf (`X-Acting-User`), looks up an order's payments and refunds them.
"""

from __future__ import annotations

from typing import Annotated
from uuid import UUID

from fastapi import APIRouter, FastAPI, Query, Request, Response

from payments_service.core.deps import PaymentServiceDep
from payments_service.domain.models import Charge, ChargeBatch, Payment, PaymentRequest
from service_kit import routes as plain
from service_kit.auth import (
    ACTING_USER_HEADER,
    ActingUser,
    AdminPrincipal,
    CallingService,
    CurrentPrincipal,
    acting_user,
    calling_service,
    valid_acting_user,
)
from service_kit.batch import BatchAnswer, answer_each
from service_kit.idempotency import IDEMPOTENCY_KEY, IdempotencyKey, created_or_replayed, creation, valid_key
from service_kit.limits import PageLimit, PageOffset

router = APIRouter(prefix="/payments", tags=["payments"])
internal = APIRouter(prefix="/internal/payments", tags=["internal"])

_ERRORS = {
    404: {"description": "No such payment visible to the caller"},
    409: {"description": "Order already paid, or payment not refundable"},
    422: {"description": "Invalid body, missing Idempotency-Key, or key reused with a different body"},
}
_SERVICE_ONLY = {
    401: {"description": "no valid service token"},
    403: {"description": "not a service's token"},
}


@router.get(
    "/",
    response_model=list[Payment],
    description="The caller's payments (an admin's: everyone's), newest first, `limit`/`offset` paginated; "
    "`order_id` narrows them to one order.",
)
async def list_payments(
    principal: CurrentPrincipal,
    service: PaymentServiceDep,
    order_id: Annotated[UUID | None, Query(description="Only this order's payments")] = None,
    limit: PageLimit = 20,
    offset: PageOffset = 0,
) -> list[Payment]:
    owner = None if principal.is_admin else principal.user_id
    return [Payment.of(r) for r in await service.page(owner, order_id, limit, offset)]


@router.get("/{payment_id}", response_model=Payment, responses=_ERRORS)
async def get_payment(payment_id: UUID, principal: CurrentPrincipal, service: PaymentServiceDep) -> Payment:
    return Payment.of(await service.get(payment_id, principal.user_id, principal.is_admin))


@router.post(
    "/{payment_id}/refund",
    response_model=Payment,
    responses={403: {"description": "not an admin: customers cancel the order instead"}, **_ERRORS},
)
async def refund_payment(payment_id: UUID, _: AdminPrincipal, service: PaymentServiceDep) -> Payment:
    return Payment.of(await service.refund(payment_id))


@internal.post("", **creation(Payment, _ERRORS | _SERVICE_ONLY))
async def create_payment(
    body: PaymentRequest,
    idempotency_key: IdempotencyKey,
    _: CallingService,
    customer: ActingUser,
    service: PaymentServiceDep,
    response: Response,
) -> Payment:
    record, created = await service.create(customer.user_id, idempotency_key, body)
    return created_or_replayed(response, created, Payment.of(record))


async def create_payment_plain(request: Request) -> Response:
    """POST /internal/payments (the saga's charge) as a plain Starlette route (service_kit.routes): the same checks
    as `create_payment`, without FastAPI's dependency solving and validation; anything else goes to that route."""
    body = await plain.json_body(request, PaymentRequest)
    idempotency_key = plain.header(request, IDEMPOTENCY_KEY, valid_key, required=True)
    acting_token = plain.header(request, ACTING_USER_HEADER, valid_acting_user, required=True)
    caller = await calling_service(request, plain.bearer_token(request))
    customer = await acting_user(request, caller, acting_token)
    record, created = await request.app.state.payments.create(customer.user_id, idempotency_key, body)
    return plain.created_or_replayed(created, Payment.of(record))


@internal.post(
    "/batch",
    response_model=BatchAnswer[Payment],
    responses=_SERVICE_ONLY,
    description=(
        "Several orders' charges in one call, each exactly as `POST /internal/payments` would take it (its own "
        "Idempotency-Key and acting user's token in the item): one answer per item, in order, with the status "
        "that call would have answered (201 created, 200 replayed, 403 an acting user's token refused, 409 order "
        "already paid, 422 key reused with another body)."
    ),
)
async def create_payment_batch(
    batch: ChargeBatch, caller: CallingService, service: PaymentServiceDep, request: Request
) -> BatchAnswer[Payment]:
    async def charge(item: Charge) -> tuple[Payment, bool]:
        customer = await acting_user(request, caller, item.acting_user.get_secret_value())
        record, created = await service.create(customer.user_id, item.idempotency_key, item.payment)
        return Payment.of(record), created

    return await answer_each(batch.items, charge)


@internal.get(
    "",
    response_model=list[Payment],
    responses=_SERVICE_ONLY,
    description=(
        "Every payment recorded for one order, oldest first; an empty list when there are none. Read-only: "
        "lets orders find out whether a charge whose answer was lost was taken."
    ),
)
async def payments_for_order(
    order_id: Annotated[UUID, Query(description="The order whose payments to list")],
    _: CallingService,
    service: PaymentServiceDep,
) -> list[Payment]:
    return [Payment.of(record) for record in await service.for_order(order_id)]


@internal.post("/{payment_id}/refund", response_model=Payment, responses={**_ERRORS, **_SERVICE_ONLY})
async def refund_for_order(payment_id: UUID, _: CallingService, service: PaymentServiceDep) -> Payment:
    return Payment.of(await service.refund(payment_id))


def serve_hot_writes(app: FastAPI) -> None:
    """POST /internal/payments by `create_payment_plain`, in front of `create_payment`."""
    plain.serve_plain_body(app, internal, "POST", "/internal/payments", create_payment_plain)
