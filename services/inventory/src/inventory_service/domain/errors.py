"""Domain failures; the kit answers each with its status and a one-line `detail`."""

from service_kit.errors import DomainError


class InventoryError(DomainError):
    status_code = 400


class ProductNotFound(InventoryError):
    status_code = 404

    def __init__(self) -> None:
        super().__init__("product not found")


class InsufficientStock(InventoryError):
    status_code = 409

    def __init__(self) -> None:
        super().__init__("insufficient stock")


class ReservationNotFound(InventoryError):
    status_code = 404

    def __init__(self) -> None:
        super().__init__("reservation not found")


class ReservationConflict(InventoryError):
    """The order id already holds a reservation for a different product or quantity."""

    status_code = 409

    def __init__(self) -> None:
        super().__init__("order already holds a reservation for another product or quantity")
