"""Input limits shared by every service: request body size, text without control characters, and the money
bounds that keep every accepted order inside the numeric columns it is stored in.

Money: prices are at most `MAX_PRICE` and quantities at most `MAX_QUANTITY`, so an order's amount is at most
`MAX_AMOUNT` (999,999.99 × 10,000 = 9,999,999,900.00), which fits payments.amount numeric(12,2) and
orders.amount numeric(14,2); nothing a client can send overflows a column on the way.
"""

from __future__ import annotations

import json
from decimal import Decimal
from typing import Annotated

from fastapi import Query
from pydantic import AfterValidator
from starlette.exceptions import HTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

MAX_PRICE = Decimal("999999.99")
MAX_QUANTITY = 10_000
MAX_AMOUNT = MAX_PRICE * MAX_QUANTITY
assert MAX_AMOUNT < Decimal("1e10"), "an order's amount must fit numeric(12,2)"

# C0 controls (NUL included) and DEL; tab, newline and carriage return are ordinary text.
_CONTROL = {chr(c) for c in range(0x20)} - {"\t", "\n", "\r"} | {"\x7f"}


def _no_control_characters(value: str) -> str:
    if any(ch in _CONTROL for ch in value):
        raise ValueError("must not contain NUL or other control characters")
    return value


# Refuses NUL and control characters (422), for any text stored or shown to people. Put it after the field's
# StringConstraints (`Annotated[str, StringConstraints(...), NoControlCharacters]`): nesting an Annotated that
# carries a validator under StringConstraints loses the constraints.
NoControlCharacters = AfterValidator(_no_control_characters)
PlainText = Annotated[str, NoControlCharacters]

# `limit`/`offset` of a paginated list.
PageLimit = Annotated[int, Query(ge=1, le=100)]
PageOffset = Annotated[int, Query(ge=0, le=100_000)]


def has_control_characters(value: str) -> bool:
    return any(ch in _CONTROL for ch in value)


class BodyTooLarge(HTTPException):
    def __init__(self, limit: int) -> None:
        super().__init__(413, f"request body larger than {limit} bytes")


class BodyLimitMiddleware:
    """Pure ASGI: refuse a body above the limit with 413, from its Content-Length at once or, for a body sent
    without one (chunked), as soon as the bytes read pass it; nothing beyond the limit is ever buffered.

    The limit is read per request from the app's settings (`MAX_BODY_BYTES`), or `default` before they exist.
    """

    def __init__(self, app: ASGIApp, default: int = 1024 * 1024) -> None:
        self.app = app
        self.default = default

    def _limit(self, scope: Scope) -> int:
        settings = getattr(getattr(scope.get("app"), "state", None), "settings", None)
        return getattr(settings, "max_body_bytes", self.default)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        limit = self._limit(scope)
        for name, value in scope.get("headers") or ():
            if name == b"content-length":
                try:
                    declared = int(value)
                except ValueError:
                    declared = 0
                if declared > limit:
                    await _too_large(send, limit)
                    return
        received = 0
        started = False

        async def limited_receive() -> Message:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > limit:
                    raise BodyTooLarge(limit)
            return message

        async def tracking_send(message: Message) -> None:
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
            await send(message)

        try:
            await self.app(scope, limited_receive, tracking_send)
        except BodyTooLarge:
            if started:
                raise
            await _too_large(send, limit)


async def _too_large(send: Send, limit: int) -> None:
    body = json.dumps({"detail": f"request body larger than {limit} bytes"}).encode()
    await send(
        {
            "type": "http.response.start",
            "status": 413,
            "headers": [
                (b"content-type", b"application/json"),
                (b"content-length", str(len(body)).encode()),
                (b"connection", b"close"),
            ],
        }
    )
    await send({"type": "http.response.body", "body": body})
