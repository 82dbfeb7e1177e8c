from service_kit.settings import ServiceSettings


class OrdersSettings(ServiceSettings):
    service_name: str = "orders"
    users_url: str
    inventory_url: str
    payments_url: str
    http_timeout_seconds: float = 3.0
    # Retries apply only to idempotent calls (GET, and calls carrying an idempotency key).
    http_retries: int = 2
