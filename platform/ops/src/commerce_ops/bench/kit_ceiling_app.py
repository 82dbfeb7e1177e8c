"""The ceiling again, but built by the service kit (`create_app`: request-id/log middleware, error handlers, health
routes, the lifespan's pool and Redis client) with the same constant endpoint and a response model.

Between the bare ceiling and this one is what the kit and a response model cost; between this one and the cached
product read is the read itself (the dependency, the Redis GET, the cached JSON's check) — so the bench can say
which part bounds it.
"""

from fastapi import APIRouter

from commerce_ops.bench.ceiling_app import CONSTANT
from inventory_service.domain.models import Product
from service_kit.app import create_app
from service_kit.settings import ServiceSettings

router = APIRouter()


@router.get("/ceiling", response_model=Product)
async def kit_ceiling() -> dict:
    return CONSTANT


app = create_app(ServiceSettings, title="kit ceiling", routers=[router])
