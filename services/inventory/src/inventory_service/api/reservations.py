"""Stock reservations for the orders service: service identity only (an end user's token is 403), and not under
a public prefix, so only reachable inside the cluster."""

from __future__ import annotations

from uuid import UUID

from fastapi import APIRouter, FastAPI, Request, Response

from inventory_service.core.deps import InventoryDep
from inventory_service.domain.models import Released, Reservation, ReservationBatch, ReservationRequest
from service_kit import routes as plain
from service_kit.auth import CallingService, calling_service
from service_kit.batch import BatchAnswer, answer_each
from service_kit.idempotency import created_or_replayed, creation

router = APIRouter(prefix="/internal/reservations", tags=["internal"])
_AUTH = {401: {"description": "no valid service token"}, 403: {"description": "not a service's token"}}


@router.post(
    "",
    **creation(
        Reservation,
        {
            404: {"description": "product not found"},
            409: {
                "description": "insufficient stock, or the order id is reserved for another product/quantity"
            },
            **_AUTH,
        },
        replay="this order's existing reservation",
    ),
)
async def reserve(
    request: ReservationRequest, _: CallingService, inventory: InventoryDep, response: Response
) -> Reservation:
    reservation, created = await inventory.reserve(request)
    return created_or_replayed(response, created, reservation)


async def reserve_plain(request: Request) -> Response:
    """POST /internal/reservations (the saga's reservation) as a plain Starlette route (service_kit.routes): the
    same checks as `reserve`, without FastAPI's dependency solving and validation; anything else goes to it."""
    body = await plain.json_body(request, ReservationRequest)
    await calling_service(request, plain.bearer_token(request))
    reservation, created = await request.app.state.inventory.reserve(body)
    return plain.created_or_replayed(created, reservation)


@router.post(
    "/batch",
    response_model=BatchAnswer[Reservation],
    responses=_AUTH,
    description=(
        "Several orders' reservations in one call, each exactly as `POST /internal/reservations` would make it "
        "(idempotent per order id, its own transaction): one answer per item, in order, with the status that "
        "call would have answered (201 created, 200 this order's existing reservation, 404 product not found, "
        "409 insufficient stock or the order id reserved for another product/quantity)."
    ),
)
async def reserve_batch(
    batch: ReservationBatch, _: CallingService, inventory: InventoryDep
) -> BatchAnswer[Reservation]:
    return await answer_each(batch.items, inventory.reserve)


@router.post(
    "/{order_id}/release",
    response_model=Released,
    responses={404: {"description": "no such order"}, **_AUTH},
)
async def release(order_id: UUID, _: CallingService, inventory: InventoryDep) -> Released:
    reservation = await inventory.release(order_id)  # ReservationNotFound: 404
    return Released(order_id=reservation.order_id)


def serve_hot_writes(app: FastAPI) -> None:
    """POST /internal/reservations by `reserve_plain`, in front of `reserve`."""
    plain.serve_plain_body(app, router, "POST", "/internal/reservations", reserve_plain)
