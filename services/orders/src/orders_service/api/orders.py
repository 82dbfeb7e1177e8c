"""Orders HTTP routes: thin; the flow lives in domain/placement.py."""

from __future__ import annotations

from uuid import UUID

from fastapi import APIRouter, FastAPI, Request, Response

from orders_service.core.deps import OrderPlacementDep
from orders_service.domain.models import Order, OrderRequest, OrderStatusView
from service_kit import routes as plain
from service_kit.auth import CurrentPrincipal, current_principal
from service_kit.idempotency import (
    IDEMPOTENCY_KEY,
    OptionalIdempotencyKey,
    created_or_replayed,
    creation,
    valid_key,
)
from service_kit.limits import PageLimit, PageOffset

router = APIRouter(prefix="/orders", tags=["orders"])

_ERRORS = {
    404: {"description": "No such order visible to the caller"},
    409: {"description": "The order cannot be cancelled in its state"},
    422: {"description": "Invalid body, or Idempotency-Key reused with a different body"},
    502: {"description": "A downstream service answered unexpectedly"},
    503: {"description": "A downstream service is unavailable"},
}


@router.post(
    "/",
    **creation(Order, _ERRORS),
    description=(
        "Places an order. The outcome is in `status`: `completed`, or `failed` with `failure_reason` "
        "(e.g. insufficient stock, payment declined); both answer 201."
    ),
)
async def place_order(
    body: OrderRequest,
    principal: CurrentPrincipal,
    placement: OrderPlacementDep,
    response: Response,
    idempotency_key: OptionalIdempotencyKey = None,
) -> Order:
    order, created = await placement.place(principal, body, idempotency_key)
    return created_or_replayed(response, created, Order.of(order))


@router.get(
    "/",
    response_model=list[Order],
    description="The caller's orders (an admin's: everyone's), newest first, `limit`/`offset` paginated.",
)
async def list_orders(
    principal: CurrentPrincipal, placement: OrderPlacementDep, limit: PageLimit = 20, offset: PageOffset = 0
) -> list[Order]:
    return [Order.of(order) for order in await placement.page(principal, limit, offset)]


@router.post(
    "/{order_id}/cancel",
    response_model=Order,
    responses=_ERRORS,
    description=(
        "The owner or an admin cancels a `completed` order: its payment is refunded, its stock released and its "
        "status becomes `cancelled`. Idempotent (a cancelled order answers 200 again). `pending`/`processing` "
        "and `failed` orders answer 409."
    ),
)
async def cancel_order(order_id: UUID, principal: CurrentPrincipal, placement: OrderPlacementDep) -> Order:
    return Order.of(await placement.cancel(order_id, principal))


@router.get("/{order_id}", response_model=Order, responses=_ERRORS)
async def get_order(order_id: UUID, principal: CurrentPrincipal, placement: OrderPlacementDep) -> Order:
    return Order.of(await placement.get(order_id, principal))


@router.get("/{order_id}/status", response_model=OrderStatusView, responses=_ERRORS)
async def get_order_status(
    order_id: UUID, principal: CurrentPrincipal, placement: OrderPlacementDep
) -> OrderStatusView:
    return OrderStatusView.of(await placement.get(order_id, principal))


async def place_order_plain(request: Request) -> Response:
    """POST /orders/ as a plain Starlette route (service_kit.routes): the same checks as `place_order`, without
    FastAPI's dependency solving and validation per order; a request it does not take as is goes to that route."""
    body = await plain.json_body(request, OrderRequest)
    idempotency_key = plain.header(request, IDEMPOTENCY_KEY, valid_key)
    principal = await current_principal(request, plain.bearer_token(request))
    order, created = await request.app.state.placement.place(principal, body, idempotency_key)
    return plain.created_or_replayed(created, Order.of(order))


def serve_hot_writes(app: FastAPI) -> None:
    """POST /orders/ (the saga's entry) by `place_order_plain`, in front of `place_order`."""
    plain.serve_plain_body(app, router, "POST", "/orders/", place_order_plain)
