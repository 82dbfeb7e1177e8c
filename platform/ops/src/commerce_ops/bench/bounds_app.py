"""The physical bounds as endpoints: a bare FastAPI route doing exactly one Redis GET, and one doing exactly one
pooled SELECT by primary key, served like the services are (and the same two as plain Starlette routes).

The clients are configured by the service kit (`create_redis`, `create_pool`: same timeouts, pool size and reset
as inventory's) and read inventory's own settings from the environment, so between these and inventory's product
read is only what the kit's app and the inventory code add: middleware, the dependency, the cache's checks.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Annotated

from fastapi import FastAPI, Path, Request, Response

from inventory_service.settings import PRODUCT_CACHE_PREFIX, InventorySettings
from service_kit.cache import create_redis
from service_kit.db import create_pool

PRODUCT_SQL = "SELECT id, name, price, stock FROM products WHERE id = $1"


@asynccontextmanager
async def lifespan(app: FastAPI) -> AsyncIterator[None]:
    settings = InventorySettings()
    app.state.redis = create_redis(settings)
    app.state.db = await create_pool(settings)
    try:
        yield
    finally:
        await app.state.redis.aclose()
        await app.state.db.close()


app = FastAPI(title="bounds", lifespan=lifespan)
ProductId = Annotated[int, Path(ge=1)]


@app.get("/redis/{product_id}")
async def one_redis_get(product_id: ProductId, request: Request) -> Response:
    text = await request.app.state.redis.get(f"{PRODUCT_CACHE_PREFIX}:{product_id}")
    return Response(text or "null", media_type="application/json")


@app.get("/db/{product_id}")
async def one_pooled_select(product_id: ProductId, request: Request) -> Response:
    row = await request.app.state.db.fetchrow(PRODUCT_SQL, product_id)
    body = f'{{"id":{row[0]},"name":"{row[1]}","price":"{row[2]}","stock":{row[3]}}}' if row else "null"
    return Response(body, media_type="application/json")


# The spike: the same two reads as plain Starlette routes in the same app (no dependency solving, no parameter
# validation beyond the path's int convertor, no FastAPI request handler): what a route pays FastAPI for.
async def starlette_redis_get(request: Request) -> Response:
    return await one_redis_get(request.path_params["product_id"], request)


async def starlette_pooled_select(request: Request) -> Response:
    return await one_pooled_select(request.path_params["product_id"], request)


app.add_route("/starlette/redis/{product_id:int}", starlette_redis_get, include_in_schema=False)
app.add_route("/starlette/db/{product_id:int}", starlette_pooled_select, include_in_schema=False)
