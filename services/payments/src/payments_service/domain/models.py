"""Payment requests and records."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from enum import StrEnum
from typing import Annotated
from uuid import UUID

from pydantic import AfterValidator, BaseModel, ConfigDict, Field

from service_kit.auth import ActingUserToken
from service_kit.batch import Batch
from service_kit.idempotency import KeyField
from service_kit.limits import MAX_AMOUNT
from service_kit.records import View

CENT = Decimal("0.01")


def _to_cents(value: Decimal) -> Decimal:
    return value.quantize(CENT)


Amount = Annotated[
    Decimal,
    Field(gt=0, le=MAX_AMOUNT, decimal_places=2, description="Positive, at most 2 decimal places"),
    AfterValidator(_to_cents),
]
# ISO 4217 alphabetic code; lower case is accepted and normalised so "usd" and "USD" are the same request.
Currency = Annotated[
    str,
    Field(min_length=3, max_length=3, pattern=r"^[A-Za-z]{3}$", description="ISO 4217 code, e.g. EUR"),
    AfterValidator(str.upper),
]


class PaymentStatus(StrEnum):
    AUTHORIZED = "authorized"
    DECLINED = "declined"
    REFUNDED = "refunded"


class PaymentRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    order_id: UUID
    amount: Amount
    currency: Currency

    def fingerprint(self) -> str:
        """Hash of the normalised request: the same charge asked twice has the same fingerprint."""
        canonical = f"{self.order_id}|{self.amount}|{self.currency}"
        return hashlib.sha256(canonical.encode()).hexdigest()


class Charge(BaseModel):
    """One order's charge in a batch (`POST /internal/payments/batch`): what `POST /internal/payments` takes in its
    headers (Idempotency-Key, X-Acting-User) and its body."""

    model_config = ConfigDict(extra="forbid")

    idempotency_key: KeyField
    acting_user: ActingUserToken
    payment: PaymentRequest


ChargeBatch = Batch[Charge]


@dataclass(frozen=True)
class PaymentRecord:
    id: UUID
    owner_id: str
    order_id: UUID
    amount: Decimal
    currency: str
    status: PaymentStatus
    decline_reason: str | None
    provider_reference: str | None
    idempotency_key: str
    request_hash: str
    created_at: datetime | None = None


class Payment(View):
    """What callers see of a payment."""

    id: UUID
    order_id: UUID
    amount: Decimal
    currency: str
    status: PaymentStatus
    decline_reason: str | None
    created_at: datetime


@dataclass(frozen=True)
class Authorization:
    """The provider's answer to a charge."""

    approved: bool
    reference: str | None
    decline_reason: str | None = None
