"""Domain failures; the API layer maps each to an HTTP status."""


class PaymentError(Exception):
    status_code = 400

    def __init__(self, detail: str) -> None:
        super().__init__(detail)
        self.detail = detail


class PaymentNotFound(PaymentError):
    status_code = 404


class IdempotencyKeyReused(PaymentError):
    """The key was already used by this caller for a different request."""

    status_code = 422


class OrderAlreadyPaid(PaymentError):
    status_code = 409


class NotRefundable(PaymentError):
    status_code = 409
