"""The payments service app: `uvicorn payments_service.main:app`."""

from payments_service.api.payments import internal, router, serve_hot_writes
from payments_service.core.lifespan import lifespan
from payments_service.settings import PaymentsSettings
from service_kit.app import create_app

app = create_app(PaymentsSettings, title="payments", routers=[router, internal], extension=lifespan)
serve_hot_writes(app)
