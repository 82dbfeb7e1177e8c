from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, FastAPI, Path, Query, Request, Response, status

from inventory_service.core.deps import InventoryDep
from inventory_service.domain.models import MAX_ID, Product, ProductCreate, ProductPage, ProductUpdate
from service_kit.auth import AdminPrincipal
from service_kit.limits import PlainText
from service_kit.routes import serve_plain

router = APIRouter(prefix="/products", tags=["products"])
ProductIdPath = Annotated[int, Path(ge=1, le=MAX_ID)]
NOT_FOUND = {404: {"description": "product not found"}}  # ProductNotFound, via the kit's handler


@router.get(
    "/",
    response_model=ProductPage,
    description="Public. Products by id; `name` filters by a case-insensitive substring; `after` is the last "
    "id of the previous page (`next_after` of the answer, null on the last page).",
)
async def list_products(
    inventory: InventoryDep,
    limit: Annotated[int, Query(ge=1, le=100)] = 20,
    after: Annotated[int, Query(ge=0, le=MAX_ID)] = 0,
    name: Annotated[PlainText | None, Query(min_length=1, max_length=200)] = None,
) -> ProductPage:
    return await inventory.page(limit, after, name)


# The hot read answers with the product's JSON text as cached (the schema is still Product's, in OpenAPI):
# re-validating and re-serialising it per request cost more CPU than the rest of the read.
@router.get("/{product_id}", response_model=Product, responses=NOT_FOUND)
async def get_product(product_id: ProductIdPath, inventory: InventoryDep) -> Response:
    return Response(await inventory.product_json(product_id), media_type="application/json")


async def get_product_plain(request: Request) -> Response:
    """The same read for a valid id, as a plain Starlette route (service_kit.routes): no dependency solving or
    parameter validation per request, the hot read's largest cost after the query itself."""
    inventory = request.app.state.inventory
    return Response(
        await inventory.product_json(request.path_params["product_id"]), media_type="application/json"
    )


def serve_hot_reads(app: FastAPI) -> None:
    """GET /products/{id} with an id in range by `get_product_plain`; anything else by the route above."""
    serve_plain(
        app,
        router,
        "GET",
        "/products/{product_id}",
        "/products/{product_id:int}",
        get_product_plain,
        accept=lambda params: 1 <= params["product_id"] <= MAX_ID,
    )


@router.post("/", status_code=status.HTTP_201_CREATED, response_model=Product)
async def create_product(data: ProductCreate, _: AdminPrincipal, inventory: InventoryDep) -> Product:
    return await inventory.create(data)


@router.patch("/{product_id}", response_model=Product, responses=NOT_FOUND)
async def update_product(
    product_id: ProductIdPath, data: ProductUpdate, _: AdminPrincipal, inventory: InventoryDep
) -> Product:
    return await inventory.update(product_id, data)
