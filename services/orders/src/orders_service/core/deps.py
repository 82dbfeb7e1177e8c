"""Request-scoped dependencies for the orders routes."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Header, Request

from orders_service.domain.placement import OrderPlacement
from orders_service.infrastructure.clients import InventoryClient, PaymentsClient, UsersClient
from orders_service.infrastructure.repository import OrdersRepository
from orders_service.settings import OrdersSettings


async def order_placement(request: Request) -> OrderPlacement:
    state = request.app.state
    settings: OrdersSettings = state.settings

    def client(cls, name: str, url: str):
        return cls(name, state.http, url, settings.http_timeout_seconds, settings.http_retries)

    return OrderPlacement(
        OrdersRepository(state.db),
        client(UsersClient, "users", settings.users_url),
        client(InventoryClient, "inventory", settings.inventory_url),
        client(PaymentsClient, "payments", settings.payments_url),
        currency=settings.order_currency,
        resume_after_seconds=settings.order_resume_after_seconds,
    )


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
