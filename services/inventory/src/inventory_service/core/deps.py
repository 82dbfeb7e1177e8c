"""Request dependencies: the Inventory logic is built once in the lifespan and lives on app.state."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from typing import Annotated

from fastapi import Depends, FastAPI, Request

from inventory_service.domain.inventory import Inventory, is_canonical_product
from inventory_service.infrastructure.repository import InventoryRepository
from inventory_service.settings import InventorySettings
from service_kit.cache import JsonCache, NearCache

PRODUCT_CACHE_PREFIX = "product"


@contextlib.asynccontextmanager
async def inventory_extension(app: FastAPI) -> AsyncIterator[None]:
    settings: InventorySettings = app.state.settings
    async with contextlib.AsyncExitStack() as stack:
        cache = None
        if settings.product_cache_enabled:
            near = None
            if settings.product_near_cache_seconds > 0:
                near = await stack.enter_async_context(
                    NearCache(app.state.redis, PRODUCT_CACHE_PREFIX, settings.product_near_cache_seconds)
                )
            cache = JsonCache(
                app.state.redis,
                PRODUCT_CACHE_PREFIX,
                settings.product_cache_ttl_seconds,
                near=near,
                accept=is_canonical_product,
            )
        app.state.inventory = Inventory(InventoryRepository(app.state.db), cache)
        yield


async def get_inventory(request: Request) -> Inventory:
    return request.app.state.inventory


InventoryDep = Annotated[Inventory, Depends(get_inventory)]
