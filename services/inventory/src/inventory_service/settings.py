from pydantic import SecretStr

from service_kit.settings import ServiceSettings

# The product cache's keys in Redis are `product:<id>` (tools that look into the cache read the prefix here).
PRODUCT_CACHE_PREFIX = "product"


class InventorySettings(ServiceSettings):
    service_name: str = "inventory"
    redis_url: SecretStr  # the product cache (fails open; readiness still reports it)
    product_cache_ttl_seconds: int = 60
    # The in-process copy in front of Redis (service_kit.cache.NearCache; 0 turns it off). Redis invalidates it
    # on every change within one push; this is how long an entry may live if that push is lost unnoticed.
    product_near_cache_seconds: float = 2.0
    # Off only for benchmarks that measure the Postgres read path.
    product_cache_enabled: bool = True
