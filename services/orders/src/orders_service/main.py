"""The orders service app: `uvicorn orders_service.main:app`."""

from __future__ import annotations

import logging

import asyncpg
from fastapi import Request
from fastapi.responses import JSONResponse
from service_kit.app import create_app

from orders_service.api.orders import router as orders_router
from orders_service.domain.errors import OrderError
from orders_service.settings import OrdersSettings

logger = logging.getLogger("orders.errors")


async def _order_error(request: Request, exc: OrderError) -> JSONResponse:
    headers = {"WWW-Authenticate": "Bearer"} if exc.status_code == 401 else None
    return JSONResponse({"detail": exc.detail}, status_code=exc.status_code, headers=headers)


async def _database_error(request: Request, exc: Exception) -> JSONResponse:
    logger.error("orders database unavailable", extra={"error": type(exc).__name__})
    return JSONResponse({"detail": "orders database unavailable"}, status_code=503)


app = create_app(OrdersSettings, title="orders", routers=[orders_router])
app.add_exception_handler(OrderError, _order_error)
# Losing the orders database mid-request is an outage (503), not a bug (500).
for _db_error in (asyncpg.PostgresConnectionError, asyncpg.InterfaceError, ConnectionError, TimeoutError):
    app.add_exception_handler(_db_error, _database_error)
