"""Inventory's domain failures: kit `DomainError`s carrying their status and message, answered by the kit's one
handler, so routes never catch them."""

from service_kit.errors import Conflict, NotFound


class ProductNotFound(NotFound, detail="product not found"): ...


class InsufficientStock(Conflict, detail="insufficient stock"): ...


class ReservationNotFound(NotFound, detail="reservation not found"): ...


# The order id already holds a reservation for a different product or quantity.
class ReservationConflict(
    Conflict, detail="order already holds a reservation for another product or quantity"
): ...
