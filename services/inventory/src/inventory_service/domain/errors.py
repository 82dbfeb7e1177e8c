"""Inventory's domain errors: each carries its HTTP status and message, answered by the kit's one handler
(`service_kit.errors.DomainError`), so routes never catch them."""

from service_kit.errors import DomainError


class ProductNotFound(DomainError):
    status_code = 404

    def __init__(self) -> None:
        super().__init__("product not found")


class InsufficientStock(DomainError):
    status_code = 409

    def __init__(self) -> None:
        super().__init__("insufficient stock")


class ReservationNotFound(DomainError):
    status_code = 404

    def __init__(self) -> None:
        super().__init__("reservation not found")


class ReservationConflict(DomainError):
    """The order id already holds a reservation for a different product or quantity."""

    status_code = 409

    def __init__(self) -> None:
        super().__init__("order already holds a reservation for another product or quantity")
