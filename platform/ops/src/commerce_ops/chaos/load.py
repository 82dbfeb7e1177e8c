"""Bounded client load for the scenarios: every attempt is recorded, none is hidden."""

from __future__ import annotations

import asyncio
import time
from collections import Counter
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

import httpx

# Connection-level failures: the request may or may not have reached the server.
TRANSPORT_ERRORS = (httpx.TransportError,)


@dataclass(frozen=True)
class Attempt:
    started: float  # time.monotonic()
    ended: float
    status: int | None  # None: no HTTP answer
    error: str | None = None  # exception class name when there was no answer
    body: dict | None = None
    target: str = ""

    @property
    def ok(self) -> bool:
        return self.status is not None and 200 <= self.status < 300


async def attempt(client: httpx.AsyncClient, method: str, url: str, *, target: str = "", **kwargs) -> Attempt:
    started = time.monotonic()
    try:
        response = await client.request(method, url, **kwargs)
    except TRANSPORT_ERRORS as exc:
        return Attempt(started, time.monotonic(), None, type(exc).__name__, target=target)
    try:
        body = response.json()
    except ValueError:
        body = None
    return Attempt(
        started,
        time.monotonic(),
        response.status_code,
        None,
        body if isinstance(body, dict) else None,
        target,
    )


@dataclass
class Recorder:
    attempts: list[Attempt] = field(default_factory=list)

    def add(self, item: Attempt) -> Attempt:
        self.attempts.append(item)
        return item

    @property
    def failures(self) -> list[Attempt]:
        return [a for a in self.attempts if not a.ok]

    async def until_answered(self, count: int, timeout: float = 30.0) -> None:
        """Waits until `count` attempts have been answered 2xx (the load is flowing, however slow the machine),
        or `timeout` seconds."""
        deadline = asyncio.get_running_loop().time() + timeout
        while sum(a.ok for a in self.attempts) < count and asyncio.get_running_loop().time() < deadline:
            await asyncio.sleep(0.05)

    def summary(self) -> str:
        kinds = Counter(str(a.status) if a.status is not None else a.error for a in self.attempts)
        return ", ".join(f"{kind}×{n}" for kind, n in sorted(kinds.items()))


async def run_until(stop: asyncio.Event, workers: int, work: Callable[[int], Awaitable[None]]) -> None:
    """Runs `work(worker_index)` in a loop on `workers` tasks until `stop` is set."""

    async def loop(index: int) -> None:
        while not stop.is_set():
            await work(index)

    await asyncio.gather(*(loop(i) for i in range(workers)))


async def poll(check: Callable[[], Awaitable[bool]], timeout: float, interval: float = 0.1) -> float | None:
    """Seconds until `check()` was true, or None if it never was within `timeout`."""
    started = time.monotonic()
    while time.monotonic() - started < timeout:
        if await check():
            return time.monotonic() - started
        await asyncio.sleep(interval)
    return None
