from inventory_service.api import products, reservations
from inventory_service.core.deps import inventory_extension
from inventory_service.settings import InventorySettings
from service_kit.app import create_app

app = create_app(
    InventorySettings,
    title="inventory",
    routers=[products.router, reservations.router],
    extension=inventory_extension,
)
products.serve_hot_reads(app)
