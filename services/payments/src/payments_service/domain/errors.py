"""Domain failures; the API layer maps each to an HTTP status."""

from service_kit.errors import DomainError


class PaymentError(DomainError):
    status_code = 400


class PaymentNotFound(PaymentError):
    status_code = 404


class IdempotencyKeyReused(PaymentError):
    """The key was already used by this caller for a different request."""

    status_code = 422


class OrderAlreadyPaid(PaymentError):
    status_code = 409


class NotRefundable(PaymentError):
    status_code = 409
