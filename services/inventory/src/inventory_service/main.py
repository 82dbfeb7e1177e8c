"""The inventory service app: `uvicorn inventory_service.main:app`."""

from inventory_service.api import products, reservations
from inventory_service.core.lifespan import lifespan
from inventory_service.settings import InventorySettings
from service_kit.app import create_app

app = create_app(
    InventorySettings, title="inventory", routers=[products.router, reservations.router], extension=lifespan
)
products.serve_hot_reads(app)
reservations.serve_hot_writes(app)
