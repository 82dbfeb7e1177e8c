"""Request dependencies: the order placement lives on app.state (built in core/lifespan.py)."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request

from orders_service.domain.placement import OrderPlacement


async def order_placement(request: Request) -> OrderPlacement:
    return request.app.state.placement


OrderPlacementDep = Annotated[OrderPlacement, Depends(order_placement)]
