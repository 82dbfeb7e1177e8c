"""Inventory's start-up inside the kit's lifespan: the one place that wires the domain to its adapters."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator

from fastapi import FastAPI

from inventory_service.domain.inventory import Inventory, is_canonical_product
from inventory_service.infrastructure.repository import InventoryRepository
from inventory_service.settings import PRODUCT_CACHE_PREFIX, InventorySettings
from service_kit.cache import JsonCache, NearCache


@contextlib.asynccontextmanager
async def lifespan(app: FastAPI) -> AsyncIterator[None]:
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
