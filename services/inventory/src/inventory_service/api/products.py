from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path, Response, status

from inventory_service.core.deps import InventoryDep
from inventory_service.domain.models import MAX_ID, Product, ProductCreate, ProductUpdate
from service_kit.auth import AdminPrincipal

router = APIRouter(prefix="/products", tags=["products"])
ProductIdPath = Annotated[int, Path(ge=1, le=MAX_ID)]
NOT_FOUND = {404: {"description": "product not found"}}  # ProductNotFound, via the kit's handler


# The hot read answers with the product's JSON text as cached (the schema is still Product's, in OpenAPI):
# re-validating and re-serialising it per request cost more CPU than the rest of the read.
@router.get("/{product_id}", response_model=Product, responses=NOT_FOUND)
async def get_product(product_id: ProductIdPath, inventory: InventoryDep) -> Response:
    return Response(await inventory.product_json(product_id), media_type="application/json")


@router.post("/", status_code=status.HTTP_201_CREATED, response_model=Product)
async def create_product(data: ProductCreate, _: AdminPrincipal, inventory: InventoryDep) -> Product:
    return await inventory.create(data)


@router.patch("/{product_id}", response_model=Product, responses=NOT_FOUND)
async def update_product(
    product_id: ProductIdPath, data: ProductUpdate, _: AdminPrincipal, inventory: InventoryDep
) -> Product:
    return await inventory.update(product_id, data)
