"""What this process is driving, so the sweeper (domain/recovery.py) can tell its own orders from a dead
process's. One registry per app: made in the lifespan (core/lifespan.py), kept on `app.state.in_flight`."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from contextlib import contextmanager
from uuid import UUID


class InFlight:
    def __init__(self) -> None:
        self._flows: set[UUID] = set()
        # Background compensations, held until done: the event loop keeps only weak references to tasks.
        self._background: dict[UUID, asyncio.Task] = {}

    def orders(self) -> set[UUID]:
        """Orders whose flow or background compensation runs in this process."""
        return self._flows | {order_id for order_id, task in self._background.items() if not task.done()}

    @contextmanager
    def flow(self, order_id: UUID) -> Iterator[None]:
        """While the order's flow runs here."""
        self._flows.add(order_id)
        try:
            yield
        finally:
            self._flows.discard(order_id)

    def compensating(self, order_id: UUID) -> bool:
        """Whether the order's compensation is being retried in the background here."""
        running = self._background.get(order_id)
        return running is not None and not running.done()

    def hold(self, order_id: UUID, task: asyncio.Task) -> None:
        """Keep the order's background compensation until it is done."""
        self._background[order_id] = task
        task.add_done_callback(self._forget)

    def _forget(self, task: asyncio.Task) -> None:
        for order_id, held in list(self._background.items()):
            if held is task:
                del self._background[order_id]
