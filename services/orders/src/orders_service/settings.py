from pydantic import Field

from service_kit.settings import MAX_BATCH, CallerSettings

# Background compensation waits this long before its first retries, then ORDER_COMPENSATION_RETRY_SECONDS.
_COMPENSATION_RAMP = (0.2, 0.5, 1.0)


class OrdersSettings(CallerSettings):
    service_name: str = "orders"
    users_url: str
    inventory_url: str
    payments_url: str
    http_timeout_seconds: float = 3.0
    # Retries apply only to idempotent calls (GET, and calls carrying an idempotency key).
    http_retries: int = 2
    # Reservations and charges of the orders in flight go to inventory and payments together, this many at most
    # per call (1: one call per order), gathered for ORDER_BATCH_WINDOW_SECONDS (0: one event-loop tick).
    order_batch_size: int = Field(16, ge=1, le=MAX_BATCH)
    order_batch_window_seconds: float = Field(0.0, ge=0, le=0.005)
    # Prices in inventory carry no currency; orders charge in this one.
    order_currency: str = "USD"
    # A retried order (same Idempotency-Key) still pending/processing after this long is assumed interrupted
    # (e.g. the process died mid-flow) and its flow is resumed; every step is idempotent per order id.
    order_resume_after_seconds: float = 60.0
    # The sweeper (domain/recovery.py) runs this often; an order pending or processing for longer than
    # ORDER_STUCK_AFTER_SECONDS without its flow running in this process counts as stuck.
    order_sweep_interval_seconds: float = Field(5.0, gt=0, le=3600)
    order_stuck_after_seconds: float = Field(15.0, gt=0, le=86400)
    # A charge whose answer was lost may still be running in payments (our call timed out, theirs did not): only
    # a lookup this long after the charge was sent, finding no payment, proves nothing was taken. Keep it above
    # the longest a charge can take in payments.
    order_late_charge_grace_seconds: float = Field(10.0, gt=0, le=600)
    # Background compensation (after an unforeseen failure, or an undo a service down kept from finishing) tries
    # again after 0.2 s, 0.5 s, 1 s, then every ORDER_COMPENSATION_RETRY_SECONDS, ORDER_COMPENSATION_RETRIES
    # times in all: about a minute by default, enough to outlast a database or service restart. After that an
    # unfinished order is resumed when its client retries with its Idempotency-Key, or by the sweeper.
    order_compensation_retry_seconds: float = Field(2.0, gt=0, le=600)
    order_compensation_retries: int = Field(33, ge=1, le=10_000)

    def compensation_retry_delays(self) -> tuple[float, ...]:
        interval = self.order_compensation_retry_seconds
        ramp = [min(delay, interval) for delay in _COMPENSATION_RAMP]
        return tuple(
            [*ramp, *[interval] * self.order_compensation_retries][: self.order_compensation_retries]
        )
