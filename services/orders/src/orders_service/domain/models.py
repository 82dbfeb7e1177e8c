"""Orders: the request, the stored record and what callers see."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from enum import StrEnum
from typing import Annotated
from uuid import UUID

from pydantic import BaseModel, ConfigDict, Field, StringConstraints

from service_kit.limits import MAX_QUANTITY, NoControlCharacters
from service_kit.records import View

MAX_BIGINT = 2**63 - 1


class OrderStatus(StrEnum):
    PENDING = "pending"
    PROCESSING = "processing"
    COMPLETED = "completed"
    FAILED = "failed"
    CANCELLED = "cancelled"

    @property
    def finished(self) -> bool:
        return self in (OrderStatus.COMPLETED, OrderStatus.FAILED, OrderStatus.CANCELLED)


ShippingAddress = Annotated[
    str, StringConstraints(strip_whitespace=True, min_length=1, max_length=500), NoControlCharacters
]


class OrderRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    product_id: int = Field(gt=0, le=MAX_BIGINT)
    quantity: int = Field(ge=1, le=MAX_QUANTITY)
    shipping_address: ShippingAddress

    def fingerprint(self) -> str:
        """Hash of the normalised request: the same order asked twice has the same fingerprint."""
        return hashlib.sha256(self.model_dump_json().encode()).hexdigest()


@dataclass(frozen=True)
class OrderRecord:
    id: UUID
    user_id: str
    product_id: int
    quantity: int
    shipping_address: str
    status: OrderStatus
    amount: Decimal | None
    payment_id: UUID | None
    failure_reason: str | None
    idempotency_key: str | None
    request_hash: str
    created_at: datetime
    updated_at: datetime


class Order(View):
    renamed = {"order_id": "id"}

    order_id: UUID
    status: OrderStatus
    product_id: int
    quantity: int
    shipping_address: str
    amount: Decimal | None
    payment_id: UUID | None
    failure_reason: str | None
    created_at: datetime


class OrderStatusView(View):
    renamed = {"order_id": "id"}

    order_id: UUID
    status: OrderStatus
    failure_reason: str | None


@dataclass(frozen=True)
class Reservation:
    unit_price: Decimal
    status: str


@dataclass(frozen=True)
class PaymentResult:
    id: UUID
    status: str
    decline_reason: str | None

    @property
    def authorized(self) -> bool:
        return self.status == "authorized"
