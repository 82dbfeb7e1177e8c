"""Inventory's domain errors: each carries its HTTP status and message, answered by the kit's one handler
(`service_kit.errors.DomainError`), so routes never catch them."""

from service_kit.errors import DomainError


class ProductNotFound(DomainError):
    status_code = 404
    default_detail = "product not found"


class InsufficientStock(DomainError):
    status_code = 409
    default_detail = "insufficient stock"


class ReservationNotFound(DomainError):
    status_code = 404
    default_detail = "reservation not found"


class ReservationConflict(DomainError):
    """The order id already holds a reservation for a different product or quantity."""

    status_code = 409
    default_detail = "order already holds a reservation for another product or quantity"
