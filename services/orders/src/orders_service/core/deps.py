"""Request-scoped dependencies for the orders routes, and the placement logic the sweeper shares."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Header, Query, Request
from starlette.datastructures import State

from orders_service.domain.placement import OrderPlacement
from orders_service.infrastructure.clients import InventoryClient, PaymentsClient
from orders_service.infrastructure.repository import OrdersRepository
from orders_service.settings import OrdersSettings


def build_placement(state: State) -> OrderPlacement:
    """Over the app's shared resources: the pool, the HTTP client and orders' own service tokens."""
    settings: OrdersSettings = state.settings

    def client(cls, name: str, url: str):
        return cls(
            name, state.http, url, settings.http_timeout_seconds, settings.http_retries, state.service_tokens
        )

    return OrderPlacement(
        OrdersRepository(state.db),
        client(InventoryClient, "inventory", settings.inventory_url),
        client(PaymentsClient, "payments", settings.payments_url),
        currency=settings.order_currency,
        resume_after_seconds=settings.order_resume_after_seconds,
    )


async def order_placement(request: Request) -> OrderPlacement:
    return build_placement(request.app.state)


OrderPlacementDep = Annotated[OrderPlacement, Depends(order_placement)]

OptionalIdempotencyKey = Annotated[
    str | None,
    Header(
        alias="Idempotency-Key",
        min_length=1,
        max_length=200,
        pattern=r"^[\x21-\x7e]+$",
        description="Optional. Repeating an order with the same key and body returns the same order.",
    ),
]
PageLimit = Annotated[int, Query(ge=1, le=100)]
PageOffset = Annotated[int, Query(ge=0, le=100_000)]
