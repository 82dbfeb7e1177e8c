"""The payment-provider port and the deterministic simulated adapter.

A real provider (a card processor's API client) implements `PaymentProvider` and is chosen in main.py; the
service logic only ever talks to the protocol.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from decimal import Decimal
from typing import Protocol


@dataclass(frozen=True)
class Authorization:
    approved: bool
    reference: str | None
    decline_reason: str | None = None


class PaymentProvider(Protocol):
    async def authorize(self, *, idempotency_key: str, amount: Decimal, currency: str) -> Authorization:
        """Authorize a charge. The same idempotency key must yield the same authorization."""
        ...

    async def refund(self, *, reference: str, amount: Decimal, currency: str) -> str:
        """Refund (or void) an authorization; idempotent per reference. Returns the refund reference."""
        ...


class ProviderError(Exception):
    """The provider refused an operation it should have accepted (e.g. an unknown reference)."""


class SimulatedProvider:
    """Approves every charge up to `decline_above` and declines the rest: deterministic for tests and demos."""

    DECLINE_REASON = "amount exceeds limit"
    _PREFIX = "sim_auth_"

    def __init__(self, decline_above: Decimal) -> None:
        self.decline_above = decline_above

    async def authorize(self, *, idempotency_key: str, amount: Decimal, currency: str) -> Authorization:
        if amount > self.decline_above:
            return Authorization(approved=False, reference=None, decline_reason=self.DECLINE_REASON)
        # Derived from the key, so a repeated request maps to the same authorization, as with real processors.
        digest = hashlib.sha256(f"{idempotency_key}|{amount}|{currency}".encode()).hexdigest()[:24]
        return Authorization(approved=True, reference=self._PREFIX + digest)

    async def refund(self, *, reference: str, amount: Decimal, currency: str) -> str:
        if not reference.startswith(self._PREFIX):
            raise ProviderError(f"unknown authorization reference {reference!r}")
        return "sim_refund_" + reference.removeprefix(self._PREFIX)
