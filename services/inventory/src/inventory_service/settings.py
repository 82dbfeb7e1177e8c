from service_kit.settings import ServiceSettings


class InventorySettings(ServiceSettings):
    service_name: str = "inventory"
    product_cache_ttl_seconds: int = 60
    # Off only for benchmarks that measure the Postgres read path.
    product_cache_enabled: bool = True
