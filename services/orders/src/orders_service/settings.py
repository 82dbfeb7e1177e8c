from service_kit.settings import CallerSettings


class OrdersSettings(CallerSettings):
    service_name: str = "orders"
    users_url: str
    inventory_url: str
    payments_url: str
    http_timeout_seconds: float = 3.0
    # Retries apply only to idempotent calls (GET, and calls carrying an idempotency key).
    http_retries: int = 2
    # Prices in inventory carry no currency; orders charge in this one.
    order_currency: str = "USD"
    # A retried order (same Idempotency-Key) still pending/processing after this long is assumed interrupted
    # (e.g. the process died mid-flow) and its flow is resumed; every step is idempotent per order id.
    order_resume_after_seconds: float = 60.0
    # The sweeper (core/recovery.py) runs this often; an order pending or processing for longer than
    # ORDER_STUCK_AFTER_SECONDS without its flow running in this process counts as stuck.
    order_sweep_interval_seconds: float = 5.0
    order_stuck_after_seconds: float = 15.0
