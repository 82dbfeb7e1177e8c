"""Stock reservations for the orders service: service identity only (an end user's token is 403), and not under
a public prefix, so only reachable inside the cluster."""

from __future__ import annotations

from uuid import UUID

from fastapi import APIRouter, Response

from inventory_service.core.deps import InventoryDep
from inventory_service.domain.models import Released, Reservation, ReservationRequest
from service_kit.auth import CallingService
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


@router.post(
    "/{order_id}/release",
    response_model=Released,
    responses={404: {"description": "no such order"}, **_AUTH},
)
async def release(order_id: UUID, _: CallingService, inventory: InventoryDep) -> Released:
    reservation = await inventory.release(order_id)  # ReservationNotFound: 404
    return Released(order_id=reservation.order_id)
