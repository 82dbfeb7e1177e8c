"""Domain failures; main.py maps each to its HTTP status with a one-line `detail`."""

from service_kit.errors import DomainError


class OrderError(DomainError):
    status_code = 400


class OrderNotFound(OrderError):
    status_code = 404


class NotCancellable(OrderError):
    status_code = 409


class IdempotencyKeyReused(OrderError):
    status_code = 422


class DownstreamError(OrderError):
    """A service we call answered in a way it should not have (an unexpected status or body)."""

    status_code = 502


class DownstreamUnavailable(DownstreamError):
    """A service we call could not be reached, timed out, or answered 502/503/504."""

    status_code = 503


# Outcomes of the reservation step that fail the order rather than the request.
class InsufficientStock(Exception):
    pass


class ProductNotFound(Exception):
    pass
