class ProductNotFound(Exception):
    pass


class InsufficientStock(Exception):
    pass


class ReservationNotFound(Exception):
    pass


class ReservationConflict(Exception):
    """The order id already holds a reservation for a different product or quantity."""
