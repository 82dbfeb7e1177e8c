"""HTTP clients for the services orders calls, straight over the kit's shared connection pool (`send()`).

Inventory and payments are called as orders itself (a service token for each, service_kit.identity); the
customer a payment is taken for travels as their own token in `X-Acting-User`. Every call has an explicit timeout; retries happen only where repeating is harmless: GET, reservations and
releases (idempotent per order id) and payments (carrying the order id as Idempotency-Key). Failures become
domain errors with a one-line message, never a raw transport exception.
"""

from __future__ import annotations

from decimal import Decimal, InvalidOperation
from typing import Any
from uuid import UUID

import httpx

from orders_service.domain.errors import (
    DownstreamError,
    DownstreamUnavailable,
    InsufficientStock,
    ProductNotFound,
)
from orders_service.domain.models import PaymentResult, Reservation
from service_kit.auth import ACTING_USER_HEADER
from service_kit.http import RETRYABLE_STATUS, HttpClient, Reply, send
from service_kit.identity import ServiceTokens


class ServiceClient:
    def __init__(
        self,
        name: str,
        http: HttpClient,
        base_url: str,
        timeout: float,
        retries: int,
        tokens: ServiceTokens | None = None,
    ) -> None:
        self.name = name
        self.http = http
        self.base_url = base_url.rstrip("/")
        self.timeout = timeout
        self.retries = retries
        # Calls go as orders itself (audience: the target's name).
        self.auth = tokens.auth(name) if tokens is not None else None

    async def call(
        self,
        method: str,
        path: str,
        *,
        idempotent: bool,
        **kw,
    ) -> Reply:
        try:
            response = await send(
                self.http,
                method,
                self.base_url + path,
                idempotent=idempotent,
                retries=self.retries,
                timeout=self.timeout,
                auth=self.auth,
                **kw,
            )
        except httpx.TimeoutException as exc:
            raise DownstreamUnavailable(f"{self.name} service timed out") from exc
        except httpx.HTTPError as exc:
            raise DownstreamUnavailable(f"{self.name} service unreachable") from exc
        if response.status_code in RETRYABLE_STATUS:
            raise DownstreamUnavailable(f"{self.name} service unavailable ({response.status_code})")
        return response

    def unexpected(self, response: Reply) -> DownstreamError:
        return DownstreamError(f"{self.name} service answered {response.status_code} unexpectedly")

    def body(self, response: Reply) -> dict[str, Any]:
        try:
            data = response.json()
        except ValueError:
            data = None
        if not isinstance(data, dict):
            raise DownstreamError(f"{self.name} service sent an unreadable response")
        return data


class InventoryClient(ServiceClient):
    async def reserve(self, order_id: UUID, product_id: int, quantity: int) -> Reservation:
        response = await self.call(
            "POST",
            "/internal/reservations",
            idempotent=True,  # one reservation per order id, so a repeat returns the same one
            json={"order_id": str(order_id), "product_id": product_id, "quantity": quantity},
        )
        # 409 also means "this order id holds another reservation", which only a bug here could cause.
        if response.status_code == 409 and self.body(response).get("detail") == "insufficient stock":
            raise InsufficientStock()
        if response.status_code == 404:
            raise ProductNotFound()
        if response.status_code not in (200, 201):
            raise self.unexpected(response)
        data = self.body(response)
        try:
            return Reservation(unit_price=Decimal(str(data["unit_price"])), status=str(data["status"]))
        except (KeyError, InvalidOperation) as exc:
            raise DownstreamError("inventory service sent an unreadable reservation") from exc

    async def release(self, order_id: UUID) -> None:
        response = await self.call("POST", f"/internal/reservations/{order_id}/release", idempotent=True)
        # 404: nothing was reserved for this order, so there is nothing to give back.
        if response.status_code not in (200, 404):
            raise self.unexpected(response)


class PaymentsClient(ServiceClient):
    async def charge(
        self, customer_token: str, order_id: UUID, amount: Decimal, currency: str
    ) -> PaymentResult:
        response = await self.call(
            "POST",
            "/internal/payments",
            idempotent=True,  # the order id is the Idempotency-Key: a repeat returns the recorded payment
            headers={"Idempotency-Key": str(order_id), ACTING_USER_HEADER: customer_token},
            json={"order_id": str(order_id), "amount": str(amount), "currency": currency},
        )
        if response.status_code not in (200, 201):
            raise self.unexpected(response)
        return self._payment(self.body(response))

    async def for_order(self, order_id: UUID) -> list[PaymentResult]:
        """The payments recorded for the order (read-only): after a charge whose answer was lost."""
        response = await self.call(
            "GET", "/internal/payments", idempotent=True, params={"order_id": str(order_id)}
        )
        if response.status_code != 200:
            raise self.unexpected(response)
        try:
            data = response.json()
        except ValueError:
            data = None
        if not isinstance(data, list) or not all(isinstance(item, dict) for item in data):
            raise DownstreamError("payments service sent an unreadable payment list")
        return [self._payment(item) for item in data]

    async def refund(self, payment_id: UUID) -> None:
        response = await self.call("POST", f"/internal/payments/{payment_id}/refund", idempotent=True)
        if response.status_code != 200:
            raise self.unexpected(response)

    @staticmethod
    def _payment(data: dict[str, Any]) -> PaymentResult:
        try:
            return PaymentResult(
                id=UUID(str(data["id"])),
                status=str(data["status"]),
                decline_reason=data.get("decline_reason"),
            )
        except (KeyError, ValueError) as exc:
            raise DownstreamError("payments service sent an unreadable payment") from exc
