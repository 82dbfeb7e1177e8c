"""Orders' start-up inside the kit's lifespan: the one place that wires the domain to its adapters (on
app.state), and the sweeper (domain/recovery.py) in the background, cancelled on shutdown."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from typing import TypeVar

from fastapi import FastAPI

from orders_service.domain.in_flight import InFlight
from orders_service.domain.placement import OrderPlacement
from orders_service.domain.recovery import Sweeper
from orders_service.infrastructure.clients import InventoryClient, PaymentsClient, ServiceClient
from orders_service.infrastructure.repository import OrdersRepository
from orders_service.settings import OrdersSettings
from service_kit.identity import ServiceTokens

C = TypeVar("C", bound=ServiceClient)


def build_placement(app: FastAPI, tokens: ServiceTokens, in_flight: InFlight) -> OrderPlacement:
    """Over the app's shared resources: the pool, the HTTP client and orders' own service tokens."""
    settings: OrdersSettings = app.state.settings

    def client(cls: type[C], name: str, url: str) -> C:
        return cls(
            name,
            app.state.http,
            url,
            settings.http_timeout_seconds,
            settings.http_retries,
            tokens,
            batch_size=settings.order_batch_size,
            batch_window=settings.order_batch_window_seconds,
        )

    return OrderPlacement(
        OrdersRepository(app.state.db),
        client(InventoryClient, "inventory", settings.inventory_url),
        client(PaymentsClient, "payments", settings.payments_url),
        in_flight=in_flight,
        currency=settings.order_currency,
        resume_after_seconds=settings.order_resume_after_seconds,
        late_charge_grace_seconds=settings.order_late_charge_grace_seconds,
        compensation_retry_delays=settings.compensation_retry_delays(),
    )


@contextlib.asynccontextmanager
async def lifespan(app: FastAPI) -> AsyncIterator[None]:
    settings: OrdersSettings = app.state.settings
    # Orders' own identity towards inventory and payments (client credentials at the users service).
    tokens = ServiceTokens.from_settings(settings, app.state.http)
    app.state.in_flight = InFlight()
    app.state.placement = build_placement(app, tokens, app.state.in_flight)
    sweeper = Sweeper(
        app.state.placement, settings.order_sweep_interval_seconds, settings.order_stuck_after_seconds
    )
    task = asyncio.create_task(sweeper.run())
    try:
        yield
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
