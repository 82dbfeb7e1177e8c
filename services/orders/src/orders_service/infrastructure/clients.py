"""HTTP clients for the services orders calls, straight over the kit's shared connection pool (`send()`).

Inventory and payments are called as orders itself (a service token for each, service_kit.identity); the
customer a payment is taken for travels as their own token in `X-Acting-User`. Every call has an explicit timeout; retries happen only where repeating is harmless: GET, reservations and
releases (idempotent per order id) and payments (carrying the order id as Idempotency-Key). Failures become
domain errors with a one-line message, never a raw transport exception.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Sequence
from decimal import Decimal, InvalidOperation
from typing import Any, TypeVar
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
from service_kit.batch import Coalescer, ItemReply
from service_kit.http import RETRYABLE_STATUS, HttpClient, Reply, send
from service_kit.identity import ServiceTokens

T = TypeVar("T")
R = TypeVar("R")


class ServiceClient:
    def __init__(
        self,
        name: str,
        http: HttpClient,
        base_url: str,
        timeout: float,
        retries: int,
        tokens: ServiceTokens | None = None,
        *,
        batch_size: int = 1,
        batch_window: float = 0.0,
    ) -> None:
        self.name = name
        self.http = http
        self.base_url = base_url.rstrip("/")
        self.timeout = timeout
        self.retries = retries
        # Calls go as orders itself (audience: the target's name).
        self.auth = tokens.auth(name) if tokens is not None else None
        self.batch_size = batch_size
        self.batch_window = batch_window

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

    def coalescer(
        self,
        path: str,
        single: Callable[[T], Awaitable[Reply]],
        item: Callable[[T], dict[str, Any]],
        answer: Callable[[Reply | ItemReply], R],
    ) -> Coalescer[T, R]:
        """Concurrent calls of `single` (each one idempotent) coalesced into `POST path` (a batch endpoint,
        service_kit.batch) with `item(call)` per call; every answer, single or per item, read by `answer`. A target
        without the batch endpoint (404/405, e.g. an older version mid-rollout) gets the calls one by one."""

        async def one(call: T) -> R:
            return answer(await single(call))

        async def many(calls: list[T]) -> Sequence[R | BaseException]:
            response = await self.call(
                "POST", path, idempotent=True, json={"items": [item(c) for c in calls]}
            )
            if response.status_code in (404, 405):
                return await asyncio.gather(*(one(c) for c in calls), return_exceptions=True)
            if response.status_code != 200:
                raise self.unexpected(response)
            try:
                replies = [ItemReply.of(a) for a in self.body(response)["items"]]
            except (KeyError, TypeError, ValueError) as exc:
                raise DownstreamError(f"{self.name} service sent an unreadable batch answer") from exc
            if len(replies) != len(calls):
                raise DownstreamError(f"{self.name} service answered {len(replies)} items for {len(calls)}")
            # An item answered 502/503/504 (e.g. the target's database out of reach a moment) goes again alone,
            # with the single call's retries, as it would have without the batch (every item is idempotent).
            again = [i for i, reply in enumerate(replies) if reply.status_code in RETRYABLE_STATUS]
            retried = dict(
                zip(
                    again,
                    await asyncio.gather(*(one(calls[i]) for i in again), return_exceptions=True),
                    strict=True,
                )
            )
            results: list[R | BaseException] = []
            for i, reply in enumerate(replies):
                if i in retried:
                    results.append(retried[i])
                    continue
                try:
                    results.append(answer(reply))
                except Exception as exc:  # noqa: BLE001 - each caller gets its own (InsufficientStock, ...)
                    results.append(exc)
            return results

        return Coalescer(one, many, max_size=self.batch_size, window=self.batch_window)

    def unexpected(self, response: Reply | ItemReply) -> DownstreamError:
        return DownstreamError(f"{self.name} service answered {response.status_code} unexpectedly")

    def body(self, response: Reply | ItemReply) -> dict[str, Any]:
        try:
            data = response.json()
        except ValueError:
            data = None
        if not isinstance(data, dict):
            raise DownstreamError(f"{self.name} service sent an unreadable response")
        return data


class InventoryClient(ServiceClient):
    def __init__(self, *args: Any, **kw: Any) -> None:
        super().__init__(*args, **kw)
        self._reservations = self.coalescer(
            "/internal/reservations/batch", self._reserve_one, lambda body: body, self._reservation
        )

    async def reserve(self, order_id: UUID, product_id: int, quantity: int) -> Reservation:
        body = {"order_id": str(order_id), "product_id": product_id, "quantity": quantity}
        return await self._reservations.submit(body)

    async def _reserve_one(self, body: dict[str, Any]) -> Reply:
        # One reservation per order id, so a repeat returns the same one.
        return await self.call("POST", "/internal/reservations", idempotent=True, json=body)

    def _reservation(self, response: Reply | ItemReply) -> Reservation:
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
    def __init__(self, *args: Any, **kw: Any) -> None:
        super().__init__(*args, **kw)
        self._charges = self.coalescer(
            "/internal/payments/batch", self._charge_one, self._item, self._charged
        )

    async def charge(
        self, customer_token: str, order_id: UUID, amount: Decimal, currency: str
    ) -> PaymentResult:
        body = {"order_id": str(order_id), "amount": str(amount), "currency": currency}
        return await self._charges.submit((customer_token, body))

    async def _charge_one(self, charge: tuple[str, dict[str, Any]]) -> Reply:
        customer_token, body = charge
        return await self.call(
            "POST",
            "/internal/payments",
            idempotent=True,  # the order id is the Idempotency-Key: a repeat returns the recorded payment
            headers={"Idempotency-Key": body["order_id"], ACTING_USER_HEADER: customer_token},
            json=body,
        )

    @staticmethod
    def _item(charge: tuple[str, dict[str, Any]]) -> dict[str, Any]:
        customer_token, body = charge
        return {"idempotency_key": body["order_id"], "acting_user": customer_token, "payment": body}

    def _charged(self, response: Reply | ItemReply) -> PaymentResult:
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
