"""Payments' start-up inside the kit's lifespan: the one place that wires the domain to its adapters."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator

from fastapi import FastAPI

from payments_service.domain.service import PaymentService
from payments_service.infrastructure.provider import SimulatedProvider
from payments_service.infrastructure.repository import PaymentRepository
from payments_service.settings import PaymentsSettings


@contextlib.asynccontextmanager
async def lifespan(app: FastAPI) -> AsyncIterator[None]:
    settings: PaymentsSettings = app.state.settings
    # The one place that picks the provider adapter; a real processor's client would be built here.
    provider = SimulatedProvider(decline_above=settings.payment_decline_above)
    app.state.payments = PaymentService(PaymentRepository(app.state.db), provider)
    yield
