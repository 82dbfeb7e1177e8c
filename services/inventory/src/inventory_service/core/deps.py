"""Request dependencies: the inventory logic lives on app.state (built in core/lifespan.py)."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request

from inventory_service.domain.inventory import Inventory


async def get_inventory(request: Request) -> Inventory:
    return request.app.state.inventory


InventoryDep = Annotated[Inventory, Depends(get_inventory)]
