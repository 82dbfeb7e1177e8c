from pydantic import SecretStr

from service_kit.settings import ServiceSettings


class InventorySettings(ServiceSettings):
    service_name: str = "inventory"
    redis_url: SecretStr  # the product cache (fails open; readiness still reports it)
    product_cache_ttl_seconds: int = 60
    # Off only for benchmarks that measure the Postgres read path.
    product_cache_enabled: bool = True
