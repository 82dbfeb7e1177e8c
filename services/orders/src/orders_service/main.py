"""The orders service app: `uvicorn orders_service.main:app`."""

from __future__ import annotations

from orders_service.api.orders import router as orders_router
from orders_service.core.recovery import recovery_extension
from orders_service.settings import OrdersSettings
from service_kit.app import create_app

# Domain errors (OrderError) are answered by the kit; losing the orders database mid-request is the kit's 503 "dependency unavailable" (service_kit.errors).
app = create_app(OrdersSettings, title="orders", routers=[orders_router], extension=recovery_extension)
