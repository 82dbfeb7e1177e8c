"""Stock reservations for the orders service. Not under a public prefix: only reachable inside the cluster."""

from __future__ import annotations

from uuid import UUID

from fastapi import APIRouter, Response, status

from inventory_service.core.deps import InventoryDep
from inventory_service.domain.models import Released, Reservation, ReservationRequest
from service_kit.auth import CurrentPrincipal

router = APIRouter(prefix="/internal/reservations", tags=["internal"])


@router.post(
    "",
    status_code=status.HTTP_201_CREATED,
    response_model=Reservation,
    responses={
        200: {"model": Reservation, "description": "this order's existing reservation"},
        404: {"description": "product not found"},
        409: {"description": "insufficient stock, or the order id is reserved for another product/quantity"},
    },
)
async def reserve(
    request: ReservationRequest, _: CurrentPrincipal, inventory: InventoryDep, response: Response
) -> Reservation:
    # ProductNotFound, InsufficientStock and ReservationConflict answer 404/409 through the kit's handler.
    reservation, created = await inventory.reserve(request)
    if not created:
        response.status_code = status.HTTP_200_OK
    return reservation


@router.post(
    "/{order_id}/release", response_model=Released, responses={404: {"description": "no such order"}}
)
async def release(order_id: UUID, _: CurrentPrincipal, inventory: InventoryDep) -> Released:
    reservation = await inventory.release(order_id)  # ReservationNotFound: 404
    return Released(order_id=reservation.order_id)
