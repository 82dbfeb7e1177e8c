"""Request-scoped dependencies for the payments routes."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Header, Request

from payments_service.domain.service import PaymentService
from payments_service.infrastructure.repository import PaymentRepository


async def payment_service(request: Request) -> PaymentService:
    state = request.app.state
    return PaymentService(PaymentRepository(state.db), state.provider)


PaymentServiceDep = Annotated[PaymentService, Depends(payment_service)]

IdempotencyKey = Annotated[
    str,
    Header(
        alias="Idempotency-Key",
        min_length=1,
        max_length=200,
        pattern=r"^[\x21-\x7e]+$",
        description="Required. Repeating a request with the same key and body returns the recorded payment.",
    ),
]
