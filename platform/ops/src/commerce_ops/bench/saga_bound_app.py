"""The order saga's own SQL in one process, with no HTTP hops: the bound for what the hops cost (issue 17).

`POST /orders/` takes the saga's request body (the bearer token is not verified: the bound is the SQL, not the
auth) and runs, through the services' own repositories and domain code, exactly the statements the three
services run for one order: orders' INSERT (processing), inventory's reservation transaction (take the stock,
record the reservation), payments' charge (the prior-payment query, the INSERT; the simulated provider) and
orders' UPDATE to completed. Each service's statements go to that service's own database over a pool made by the
kit (`create_pool`: the same size, timeouts and reset as the service's), so between this and the real saga are
the HTTP hops, three FastAPI/Starlette apps and their kit, and the auth. The three databases are separate, so
the statements cannot share one transaction; each runs as in its service.

Env: `BOUND_<SERVICE>_DATABASE_URL` for orders, inventory and payments (compare.py's `--bound` sets them).
"""

from __future__ import annotations

import os
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from decimal import Decimal

from pydantic import SecretStr
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from inventory_service.infrastructure.repository import InventoryRepository
from orders_service.domain.models import OrderRequest
from orders_service.infrastructure.repository import OrdersRepository
from payments_service.domain.models import PaymentRequest
from payments_service.domain.service import PaymentService
from payments_service.infrastructure.provider import SimulatedProvider
from payments_service.infrastructure.repository import PaymentRepository
from payments_service.settings import PaymentsSettings
from service_kit.db import create_pool
from service_kit.settings import ServiceSettings

SERVICES = ("orders", "inventory", "payments")
USER_ID = "saga-bound"


def _pool_settings(service: str) -> ServiceSettings:
    # Only the pool's fields are read by create_pool; the rest of a service's settings do not matter here.
    url = SecretStr(os.environ[f"BOUND_{service.upper()}_DATABASE_URL"])
    return ServiceSettings.model_construct(
        database_url=url,
        db_pool_min_size=ServiceSettings.model_fields["db_pool_min_size"].default,
        db_pool_max_size=ServiceSettings.model_fields["db_pool_max_size"].default,
        dependency_timeout_seconds=ServiceSettings.model_fields["dependency_timeout_seconds"].default,
    )


@asynccontextmanager
async def lifespan(app: Starlette) -> AsyncIterator[None]:
    pools = {s: await create_pool(_pool_settings(s)) for s in SERVICES}
    app.state.orders = OrdersRepository(pools["orders"])
    app.state.inventory = InventoryRepository(pools["inventory"])
    decline_above = PaymentsSettings.model_fields["payment_decline_above"].default
    app.state.payments = PaymentService(
        PaymentRepository(pools["payments"]), SimulatedProvider(decline_above)
    )
    try:
        yield
    finally:
        for pool in pools.values():
            await pool.close()


async def place(request: Request) -> Response:
    order = OrderRequest.model_validate_json(await request.body())
    state = request.app.state
    record = await state.orders.insert_processing(
        uuid.uuid4(),
        USER_ID,
        order.product_id,
        order.quantity,
        order.shipping_address,
        None,
        order.fingerprint(),
    )
    reservation, _ = await state.inventory.reserve(record.id, order.product_id, order.quantity)
    amount: Decimal = reservation.unit_price * order.quantity
    charge = PaymentRequest(order_id=record.id, amount=amount, currency="USD")
    payment, _ = await state.payments.create(USER_ID, str(record.id), charge)
    completed = await state.orders.complete(record.id, amount, payment.id)
    return JSONResponse({"order_id": str(completed.id), "status": completed.status}, status_code=201)


async def health(request: Request) -> Response:
    return JSONResponse({"status": "ok"})


app = Starlette(
    routes=[Route("/orders/", place, methods=["POST"]), Route("/health", health)], lifespan=lifespan
)
