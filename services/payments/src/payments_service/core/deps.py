"""Request dependencies: the payments logic lives on app.state (built in core/lifespan.py)."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request

from payments_service.domain.service import PaymentService


async def payment_service(request: Request) -> PaymentService:
    return request.app.state.payments


PaymentServiceDep = Annotated[PaymentService, Depends(payment_service)]
