"""The payments service app: `uvicorn payments_service.main:app`."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse

from payments_service.api.payments import internal as internal_router
from payments_service.api.payments import router as payments_router
from payments_service.domain.provider import ProviderError, SimulatedProvider
from payments_service.settings import PaymentsSettings
from service_kit.app import create_app


@asynccontextmanager
async def _provider(app: FastAPI) -> AsyncIterator[None]:
    # The one place that picks the provider adapter; a real processor's client would be built here.
    app.state.provider = SimulatedProvider(decline_above=app.state.settings.payment_decline_above)
    yield


async def _provider_error(request: Request, exc: ProviderError) -> JSONResponse:
    return JSONResponse({"detail": f"payment provider error: {exc}"}, status_code=502)


app = create_app(
    PaymentsSettings, title="payments", routers=[payments_router, internal_router], extension=_provider
)
app.add_exception_handler(ProviderError, _provider_error)
