"""The inventory API's request and response shapes."""

from __future__ import annotations

from decimal import Decimal
from typing import Annotated, Literal
from uuid import UUID

from pydantic import BaseModel, ConfigDict, Field, StringConstraints, model_validator

from service_kit.batch import Batch
from service_kit.limits import MAX_PRICE, MAX_QUANTITY, NoControlCharacters

MAX_ID = 2**63 - 1  # bigint
# Stock plus any quantity released back must fit the integer column (2**31 - 1), so both stay under 1e9.
MAX_STOCK = 1_000_000_000
ProductId = Annotated[int, Field(ge=1, le=MAX_ID)]
Name = Annotated[
    str, StringConstraints(strip_whitespace=True, min_length=1, max_length=200), NoControlCharacters
]
# Above zero (a free product could never be paid for: payments take positive amounts only) and at most
# MAX_PRICE, so price × the largest quantity an order may ask for fits every amount column (service_kit.limits).
Price = Annotated[Decimal, Field(gt=0, le=MAX_PRICE, decimal_places=2, allow_inf_nan=False)]
Stock = Annotated[int, Field(ge=0, le=MAX_STOCK)]


class ProductCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")
    name: Name
    price: Price
    stock: Stock


class ProductUpdate(BaseModel):
    model_config = ConfigDict(extra="forbid")
    name: Name | None = None
    price: Price | None = None
    stock: Stock | None = None

    @model_validator(mode="after")
    def _something_to_change(self) -> ProductUpdate:
        if not self.model_fields_set:
            raise ValueError("give at least one of name, price, stock")
        if any(getattr(self, f) is None for f in self.model_fields_set):
            raise ValueError("name, price and stock cannot be null")
        return self


class Product(BaseModel):
    id: int
    name: str
    price: Decimal
    stock: int


class ProductPage(BaseModel):
    items: list[Product]
    next_after: int | None  # pass as `after` for the next page; null when this is the last one


class ReservationRequest(BaseModel):
    order_id: UUID
    product_id: ProductId
    quantity: Annotated[int, Field(ge=1, le=MAX_QUANTITY)]


# Several orders' reservations in one call (orders coalesces the reservations of the orders in flight).
ReservationBatch = Batch[ReservationRequest]


class Reservation(BaseModel):
    order_id: UUID
    product_id: int
    quantity: int
    unit_price: Decimal
    status: Literal["reserved", "released"]


class Released(BaseModel):
    order_id: UUID
    status: Literal["released"] = "released"
