"""The orders service app: `uvicorn orders_service.main:app`."""

from __future__ import annotations

from fastapi import Request
from fastapi.responses import JSONResponse

from orders_service.api.orders import router as orders_router
from orders_service.core.recovery import recovery_extension
from orders_service.domain.errors import OrderError
from orders_service.settings import OrdersSettings
from service_kit.app import create_app


async def _order_error(request: Request, exc: OrderError) -> JSONResponse:
    headers = {"WWW-Authenticate": "Bearer"} if exc.status_code == 401 else None
    return JSONResponse({"detail": exc.detail}, status_code=exc.status_code, headers=headers)


# Losing the orders database mid-request is the kit's 503 "dependency unavailable" (service_kit.errors).
app = create_app(OrdersSettings, title="orders", routers=[orders_router], extension=recovery_extension)
app.add_exception_handler(OrderError, _order_error)
