"""The deterministic simulated payment provider (the `PaymentProvider` port, domain/ports.py)."""

from __future__ import annotations

import hashlib
from decimal import Decimal

from payments_service.domain.errors import ProviderError
from payments_service.domain.models import Authorization


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
