"""Payments' domain failures: kit `DomainError`s carrying their status, answered by the kit's one handler."""

from uuid import UUID

from service_kit.errors import BadGateway, Conflict, NotFound


class PaymentNotFound(NotFound, detail="payment not found"): ...


class OrderAlreadyPaid(Conflict):
    def __init__(self, order_id: UUID) -> None:
        super().__init__(f"order {order_id} already has an authorized payment")


class ProviderError(BadGateway):
    """The provider refused an operation it should have accepted (e.g. an unknown reference)."""

    def __init__(self, detail: str) -> None:
        super().__init__(f"payment provider error: {detail}")


class AuthorizedPaymentExists(Exception):
    """Raised by the store: the order already has an authorized payment (another key won the race)."""
