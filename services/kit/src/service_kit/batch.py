"""Several callers' calls to one internal endpoint in one HTTP request: fewer hops per order (issue 17).

Client side, `Coalescer`: the calls submitted while a batch is open (one event-loop tick, or a short window)
go together, at most `max_size` at a time. A batch of one is sent as the single call it is (the endpoint each item
would have used alone), so at low concurrency nothing changes; several go as one request to a batch endpoint.
Each caller gets its own item's answer (or error); a batch that fails as a whole (timeout, connection lost, 5xx)
fails every item in it alike, which is what each call alone would have seen. Every item must be idempotent on its
own (per order id), so repeating a batch or any item of it is harmless.

Server side, `answer_each`: runs one domain call per item, concurrently, and answers each with its own status, as
its single endpoint would have (the kit's error handlers' status and detail: a `DomainError`'s, 403 for a refused
token, 503 for a database out of reach, 500 for an unforeseen error, logged); the others in the batch are
unaffected.
"""

from __future__ import annotations

import asyncio
import copy
from collections.abc import Awaitable, Callable, Sequence
from typing import Annotated, Any, Generic, TypeVar

from pydantic import BaseModel, ConfigDict, Field

from service_kit.errors import error_answer
from service_kit.settings import MAX_BATCH

T = TypeVar("T")
R = TypeVar("R")
V = TypeVar("V", bound=BaseModel)
Item = TypeVar("Item", bound=BaseModel)


class Batch(BaseModel, Generic[Item]):
    """A batch request's body: 1 to MAX_BATCH items, each what the single endpoint takes."""

    model_config = ConfigDict(extra="forbid")
    items: Annotated[list[Item], Field(min_length=1, max_length=MAX_BATCH)]


class ItemAnswer(BaseModel, Generic[V]):
    """One item's answer: its status as the single endpoint would have sent it; `result` on 200/201, else
    `detail` (the single endpoint's error detail)."""

    status: int
    result: V | None = None
    detail: str | None = None


class BatchAnswer(BaseModel, Generic[V]):
    """The answers in the order of the request's items."""

    items: list[ItemAnswer[V]]


async def answer_each(items: Sequence[T], call: Callable[[T], Awaitable[tuple[V, bool]]]) -> BatchAnswer[V]:
    """`call` per item (concurrently): (view, created) → 201/200, errors → their status and detail."""

    async def one(item: T) -> ItemAnswer[V]:
        try:
            view, created = await call(item)
        except Exception as exc:  # noqa: BLE001 - answered per item, as the kit's handlers answer a request
            status, detail = error_answer(exc)
            return ItemAnswer(status=status, detail=detail)
        return ItemAnswer(status=201 if created else 200, result=view)

    return BatchAnswer(items=list(await asyncio.gather(*(one(item) for item in items))))


class ItemReply:
    """One item of a batch answer, read like the single call's reply (`status_code`, `json()`): the item's result
    on 200/201, else `{"detail": ...}` as the single endpoint's error body."""

    __slots__ = ("status_code", "_body")

    def __init__(self, status_code: int, body: Any) -> None:
        self.status_code = status_code
        self._body = body

    @classmethod
    def of(cls, answer: Any) -> ItemReply:
        """From one entry of a `BatchAnswer`'s items; ValueError if it is not one."""
        if not isinstance(answer, dict) or not isinstance(answer.get("status"), int):
            raise ValueError("not a batch item answer")
        status = answer["status"]
        body = answer.get("result") if status in (200, 201) else {"detail": answer.get("detail")}
        return cls(status, body)

    def json(self) -> Any:
        return self._body


def _retrieved(future: asyncio.Future[Any]) -> None:
    if not future.cancelled():
        future.exception()


class Coalescer(Generic[T, R]):
    """Coalesces concurrent `submit(item)` calls: `single(item)` for a batch of one, else `many(items)`, which
    returns one result or exception per item, in order. `window` 0: a batch closes at the end of the event-loop
    tick it was opened in (what the callers ready to run in that tick submitted); else after `window` seconds.
    `max_size` 1: every call goes alone, exactly as without the coalescer."""

    def __init__(
        self,
        single: Callable[[T], Awaitable[R]],
        many: Callable[[list[T]], Awaitable[Sequence[R | BaseException]]],
        *,
        max_size: int,
        window: float = 0.0,
    ) -> None:
        if not 1 <= max_size <= MAX_BATCH:
            raise ValueError(f"max_size must be 1–{MAX_BATCH}")
        self.single = single
        self.many = many
        self.max_size = max_size
        self.window = window
        self._open: list[tuple[T, asyncio.Future[R]]] = []
        self._tasks: set[asyncio.Task[None]] = set()

    async def submit(self, item: T) -> R:
        if self.max_size == 1:
            return await self.single(item)
        loop = asyncio.get_running_loop()
        future: asyncio.Future[R] = loop.create_future()
        if not self._open:
            if self.window > 0:
                loop.call_later(self.window, self._close)
            else:
                loop.call_soon(self._close)
        self._open.append((item, future))
        if len(self._open) >= self.max_size:
            self._close()
        # A caller cancelled while waiting leaves the batch running for the others (shield); its answer is
        # then dropped without a "never retrieved" warning.
        future.add_done_callback(_retrieved)
        return await asyncio.shield(future)

    def _close(self) -> None:
        batch, self._open = self._open, []
        if batch:
            task = asyncio.ensure_future(self._send(batch))
            self._tasks.add(task)  # held until done
            task.add_done_callback(self._tasks.discard)

    async def _send(self, batch: list[tuple[T, asyncio.Future[R]]]) -> None:
        items = [item for item, _ in batch]
        try:
            if len(items) == 1:
                results: Sequence[R | BaseException] = [await self.single(items[0])]
            else:
                results = await self.many(items)
                if len(results) != len(items):
                    raise RuntimeError(f"batch answered {len(results)} items for {len(items)}")
        except BaseException as exc:  # noqa: BLE001 - every caller gets the batch's failure (its own copy,
            # so the callers' tracebacks do not pile up on one exception object)
            results = [exc, *(copy.copy(exc) for _ in items[1:])]
            if not isinstance(exc, Exception):
                self._settle(batch, results)
                raise
        self._settle(batch, results)

    @staticmethod
    def _settle(batch: list[tuple[T, asyncio.Future[R]]], results: Sequence[R | BaseException]) -> None:
        for (_, future), result in zip(batch, results, strict=True):
            if future.done():
                continue
            if isinstance(result, BaseException):
                future.set_exception(result)
            else:
                future.set_result(result)
