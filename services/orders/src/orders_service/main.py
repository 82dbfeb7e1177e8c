"""The orders service app: `uvicorn orders_service.main:app`."""

from orders_service.api.orders import router, serve_hot_writes
from orders_service.core.lifespan import lifespan
from orders_service.settings import OrdersSettings
from service_kit.app import create_app

# Domain errors are answered by the kit; losing the orders database mid-request is the kit's 503
# "dependency unavailable" (service_kit.errors).
app = create_app(OrdersSettings, title="orders", routers=[router], extension=lifespan)
serve_hot_writes(app)
