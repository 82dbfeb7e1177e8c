"""Orders' domain failures: kit `DomainError`s carrying their status, answered by the kit's one handler."""

from service_kit.errors import BadGateway, Conflict, NotFound


class OrderNotFound(NotFound, detail="order not found"): ...


class NotCancellable(Conflict): ...


class DownstreamError(BadGateway):
    """A service we call answered in a way it should not have (an unexpected status or body)."""


class DownstreamUnavailable(DownstreamError):
    """A service we call could not be reached, timed out, or answered 502/503/504."""

    status_code = 503


# Outcomes of the reservation step that fail the order rather than the request.
class InsufficientStock(Exception):
    pass


class ProductNotFound(Exception):
    pass
