"""The seed's pattern, as a baseline: a new Postgres connection per request (`asyncpg.connect`), no pool.

It runs the inventory service's own read (its repository, same SQL, same response model) so the only difference
from `GET /products/{id}` with the cache off is the connection handling. Served under the same uvicorn settings.
"""

from __future__ import annotations

import os

import asyncpg
from fastapi import FastAPI, HTTPException

from inventory_service.domain.models import Product
from inventory_service.infrastructure.repository import InventoryRepository

app = FastAPI(title="connect-per-request baseline")


@app.get("/products/{product_id}", response_model=Product)
async def get_product(product_id: int) -> Product:
    conn = await asyncpg.connect(os.environ["DATABASE_URL"])
    try:
        # A connection answers fetchrow like a pool does, so the repository runs unchanged.
        product = await InventoryRepository(conn).product(product_id)
    finally:
        await conn.close()
    if product is None:
        raise HTTPException(404, "product not found")
    return product
