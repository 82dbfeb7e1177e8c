"""The inventory app with its per-request dependency run as a coroutine: measures a proposed fix, same run.

`inventory_service.core.deps.get_inventory` is a plain `def`, so FastAPI runs it in its thread pool on every
request (a thread hop for a getter). Overriding it with an `async def` calling the same function is the whole
change; the bench reports this instance beside the unchanged one so the gain is measured, not guessed.
"""

from fastapi import Request

from inventory_service.core.deps import get_inventory
from inventory_service.domain.inventory import Inventory
from inventory_service.main import app


async def get_inventory_on_the_loop(request: Request) -> Inventory:
    return get_inventory(request)


app.dependency_overrides[get_inventory] = get_inventory_on_the_loop
