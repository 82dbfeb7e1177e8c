"""The resilience scenarios. Each runs bounded load against a `ChaosLab`, injects one fault, checks invariants
against the services' own databases, and leaves the lab healthy again (what it stopped, it restarts).

A scenario never raises for a broken invariant: it returns a `ScenarioResult` whose checks say what held and what
did not, so `ops chaos` can print every outcome and the tests can assert on them with the details.
"""

from __future__ import annotations

import asyncio
import os
import signal
import time
import uuid
from collections import Counter, defaultdict
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

import httpx
import psutil

from commerce_ops.chaos.lab import ChaosLab
from commerce_ops.chaos.load import Attempt, Recorder, attempt, poll, run_until
from inventory_service.settings import PRODUCT_CACHE_PREFIX

PG_RECOVERY_SECONDS = 10.0
# Orders' sweeper fails a stuck pending order after ORDER_STUCK_AFTER_SECONDS (15 s), checking every 5 s.
FINISH_SECONDS = 30.0
# Orders' background compensation retries every 2 s and accepts "no payment" only 10 s after the charge.
REFUND_SECONDS = 30.0


@dataclass(frozen=True)
class Check:
    name: str
    ok: bool
    detail: str = ""
    required: bool = True  # False: an observation reported beside the invariants, not one of them


@dataclass
class ScenarioResult:
    name: str
    checks: list[Check] = field(default_factory=list)
    load: str = ""  # what the client saw, e.g. "200×1834"
    seconds: float = 0.0

    @property
    def passed(self) -> bool:
        return all(c.ok for c in self.checks if c.required)

    def check(self, name: str, ok: bool, detail: str = "", required: bool = True) -> None:
        self.checks.append(Check(name, bool(ok), detail, required))

    def failures(self) -> str:
        return "; ".join(f"{c.name}: {c.detail}" for c in self.checks if c.required and not c.ok)


def _order_body(product_id: int, n: int) -> dict:
    return {"product_id": product_id, "quantity": 1, "shipping_address": f"{n} Chaos Lane"}


def _describe(attempts: list[Attempt], limit: int = 3) -> str:
    shown = [f"{a.target or ''}{a.status or a.error} {a.body or ''}"[:200] for a in attempts[:limit]]
    return f"{len(attempts)}: " + " | ".join(shown) if attempts else "none"


def _log_size(log_file) -> int:
    try:
        return os.path.getsize(log_file)
    except OSError:
        return 0


def _graceful(code: int | None, log_file, since: int) -> bool:
    """uvicorn drained and shut down: exit 0, or (uvicorn >= 0.29) re-raised SIGTERM after finishing, and what it
    logged after `since` (bytes) says the server process finished (a SIGKILL would leave no such line)."""
    try:
        with open(log_file, "rb") as log:
            log.seek(since)
            finished = b"Finished server process" in log.read()
    except OSError:
        finished = False
    return code in (0, -signal.SIGTERM) and finished


async def _wait_exit(pid: int, timeout: float) -> tuple[int | None, float]:
    """(exit code if known, seconds waited) for a process we started."""
    started = time.monotonic()
    try:
        code = await asyncio.to_thread(psutil.Process(pid).wait, timeout)
    except psutil.NoSuchProcess:
        code = None
    except psutil.TimeoutExpired:
        return None, timeout
    return code, time.monotonic() - started


# -- Redis stopped during read load --------------------------------------------------------------------------------
async def redis_outage(chaos: ChaosLab) -> ScenarioResult:
    result = ScenarioResult("Redis stopped during read load")
    started = time.monotonic()
    ids = [p["id"] for p in await chaos.new_products(4, stock=100)]
    inventory = chaos.url("inventory")
    reads = Recorder()
    stop = asyncio.Event()
    async with httpx.AsyncClient(timeout=5) as client, chaos.redis() as cache:

        async def read(worker: int) -> None:
            product = ids[(len(reads.attempts) + worker) % len(ids)]
            reads.add(await attempt(client, "GET", f"{inventory}/products/{product}"))

        async def readiness() -> Attempt:
            return await attempt(client, "GET", f"{inventory}/ready")

        async def cached(product: int) -> bool:
            # A read of a product whose cache entry was just removed must store it again.
            await cache.delete(f"{PRODUCT_CACHE_PREFIX}:{product}")
            await client.get(f"{inventory}/products/{product}")
            return bool(await cache.exists(f"{PRODUCT_CACHE_PREFIX}:{product}"))

        result.check("cache in use before the fault", await poll(lambda: cached(ids[0]), 5) is not None)
        load = asyncio.create_task(run_until(stop, 8, read))
        await asyncio.sleep(1.0)
        await asyncio.to_thread(chaos.platform.stop_redis)
        outage = time.monotonic()

        async def reports_redis_down() -> bool:
            answer = await readiness()
            return answer.status == 503 and "failing" in str(
                (answer.body or {}).get("checks", {}).get("redis")
            )

        seen_down = await poll(reports_redis_down, 5)
        await asyncio.sleep(2.0)  # reads go on without Redis
        await asyncio.to_thread(chaos.platform.start_redis)
        back = time.monotonic()

        async def ready() -> bool:
            return (await readiness()).status == 200

        ready_after = await poll(ready, 10)
        await asyncio.sleep(1.0)
        stop.set()
        await load
        resumed_after = await poll(lambda: cached(ids[1]), 5)
    during = [a for a in reads.attempts if outage <= a.started < back]
    result.load = reads.summary()
    result.check("every read answered 200", not reads.failures, _describe(reads.failures))
    result.check(
        "reads served from Postgres while Redis was down",
        during and all(a.ok for a in during),
        f"{sum(a.ok for a in during)}/{len(during)} reads during the outage answered 200",
    )
    result.check("/ready answered 503 naming redis during the outage", seen_down is not None)
    result.check(
        "/ready back to 200 after Redis returned",
        ready_after is not None,
        f"after {ready_after:.1f} s" if ready_after is not None else "not within 10 s",
    )
    result.check("caching resumed after Redis returned", resumed_after is not None)
    result.seconds = time.monotonic() - started
    return result


# -- Postgres restarted during order load --------------------------------------------------------------------------
async def postgres_restart(chaos: ChaosLab) -> ScenarioResult:
    result = ScenarioResult("Postgres restarted during order load")
    started = time.monotonic()
    products = [p["id"] for p in await chaos.new_products(2, stock=100_000)]
    pids_before = {name: chaos.platform.pid(name) for name in ("users", "inventory", "orders", "payments")}
    gateway = chaos.platform.gateway_url
    calls = Recorder()
    orders_by_key: dict[str, set[str]] = defaultdict(set)
    unresolved: list[str] = []
    refused: list[Attempt] = []
    stop = asyncio.Event()
    async with httpx.AsyncClient(timeout=15) as client:

        async def place(worker: int) -> None:
            """One order, retried with the same Idempotency-Key until it is answered (bounded)."""
            customer = chaos.customers[worker % len(chaos.customers)]
            key = f"pg-{uuid.uuid4()}"
            body = _order_body(products[worker % len(products)], worker)
            headers = customer.headers | {"Idempotency-Key": key}
            deadline = time.monotonic() + 30
            while True:
                answer = calls.add(
                    await attempt(client, "POST", f"{gateway}/orders/", json=body, headers=headers)
                )
                if answer.status in (200, 201) and answer.body:
                    orders_by_key[key].add(answer.body["order_id"])
                    return
                if answer.status is not None and answer.status < 500:
                    refused.append(answer)
                    return
                if time.monotonic() > deadline:
                    unresolved.append(key)
                    return
                await asyncio.sleep(0.2)

        load = asyncio.create_task(run_until(stop, 6, place))
        await asyncio.sleep(1.5)
        await asyncio.to_thread(chaos.platform.stop_postgres, "immediate")  # a crash, not a clean shutdown
        await asyncio.sleep(1.0)
        await asyncio.to_thread(chaos.platform.start_postgres)
        back = time.monotonic()

        async def recovered() -> bool:
            return any(a.ok and a.started >= back for a in calls.attempts)

        recovery = await poll(recovered, PG_RECOVERY_SECONDS + 5)
        await asyncio.sleep(1.0)
        stop.set()
        await load
    result.load = calls.summary()
    keys = list(orders_by_key)
    rows = await chaos.query(
        "orders",
        "SELECT id::text AS id, idempotency_key, status FROM orders WHERE idempotency_key = ANY($1)",
        keys,
    )
    rows_by_key: dict[str, list[str]] = defaultdict(list)
    for row in rows:
        rows_by_key[row["idempotency_key"]].append(row["id"])
    answered = {next(iter(ids)) for ids in orders_by_key.values() if len(ids) == 1}
    lost = answered - {row["id"] for row in rows}
    duplicated = {k: v for k, v in rows_by_key.items() if len(v) > 1}
    inconsistent = {k: v for k, v in orders_by_key.items() if len(v) > 1}
    statuses = Counter(row["status"] for row in rows)
    result.check(
        "orders were placed before, during and after the restart", len(keys) >= 10, f"{len(keys)} orders"
    )
    result.check(
        "every order was eventually answered 200/201",
        not unresolved and not refused,
        f"unanswered keys: {len(unresolved)}; refused: {_describe(refused)}",
    )
    result.check(
        "no order that got 201 is lost", not lost, f"missing from the orders table: {sorted(lost)[:5]}"
    )
    result.check(
        "no duplicates from retries with the same Idempotency-Key",
        not duplicated and not inconsistent,
        f"keys with several orders: {len(duplicated)} in the database, {len(inconsistent)} at the client",
    )
    result.check(
        f"pools recovered within {PG_RECOVERY_SECONDS:g} s without restarting services",
        recovery is not None
        and recovery <= PG_RECOVERY_SECONDS
        and pids_before == {n: chaos.platform.pid(n) for n in pids_before},
        f"first order answered {recovery:.1f} s after Postgres was back"
        if recovery is not None
        else "no order answered in time",
    )

    # Orders the crash interrupted are finished by orders itself: by the flow's background compensation, or
    # (pending ones whose flow never started) by the sweeper after ORDER_STUCK_AFTER_SECONDS.
    async def unfinished() -> list[str]:
        current = await chaos.query(
            "orders",
            "SELECT id::text AS id, status FROM orders WHERE id = ANY($1::uuid[])",
            [r["id"] for r in rows],
        )
        return [row["id"] for row in current if row["status"] in ("pending", "processing")]

    async def all_finished() -> bool:
        return not await unfinished()

    finished_after = await poll(all_finished, FINISH_SECONDS, interval=0.5)
    left = await unfinished()
    held = await chaos.query(
        "inventory",
        "SELECT coalesce(sum(quantity), 0) AS units FROM reservations "
        "WHERE status = 'reserved' AND order_id = ANY($1::uuid[])",
        left,
    )
    result.check(
        f"orders interrupted by the crash were finished by the service within {FINISH_SECONDS:g} s",
        finished_after is not None,
        f"statuses right after the load: {dict(statuses)}; all finished after {finished_after:.1f} s"
        if finished_after is not None
        else f"{len(left)} still pending/processing, holding {held[0]['units']} units of reserved stock",
    )
    result.seconds = time.monotonic() - started
    return result


# -- SIGTERM under load --------------------------------------------------------------------------------------------
SIGTERM_ATTEMPTS = 3


async def _sigterm_with_load(
    chaos: ChaosLab, product: int, customer, prefix: str
) -> tuple[Recorder, float, int | None, float, int]:
    """Orders placed by 12 workers on fresh connections; SIGTERM to orders once the load flows; waits for it to
    exit. Returns the calls, when the signal was sent, the exit code, how long the exit took, and where orders'
    log stood at the signal."""
    calls = Recorder()
    stop = asyncio.Event()
    orders = chaos.url("orders")
    counter = iter(range(10**9))
    async with httpx.AsyncClient(timeout=20, limits=httpx.Limits(max_keepalive_connections=0)) as client:

        async def place(worker: int) -> None:
            key = f"{prefix}-{next(counter)}"
            headers = customer.headers | {"Idempotency-Key": key}
            calls.add(
                await attempt(
                    client,
                    "POST",
                    f"{orders}/orders/",
                    json=_order_body(product, worker),
                    headers=headers,
                    target=key,
                )
            )

        load = asyncio.create_task(run_until(stop, 12, place))
        # Every worker answered once and is on to its next request when the signal comes.
        await calls.until_answered(12)
        await asyncio.sleep(0.2)
        pid = chaos.platform.pid("orders")
        log_offset = _log_size(chaos.platform.layout.log_file("orders"))
        term_at = time.monotonic()
        os.kill(pid, signal.SIGTERM)
        stop.set()
        code, waited = await _wait_exit(pid, 20)
        await load
    return calls, term_at, code, waited, log_offset


async def sigterm_under_load(chaos: ChaosLab) -> ScenarioResult:
    result = ScenarioResult("SIGTERM to a service under load")
    started = time.monotonic()
    product = (await chaos.new_products(1, stock=100_000))[0]["id"]
    customer = chaos.customers[0]

    # 1. SIGTERM with requests in flight: every request the service took is answered before it exits. Fresh
    # connections per request, so a failure is either a refused connection or a request the server dropped.
    # The precondition (some request inside the service when the signal comes) depends on timing: on a busy
    # machine the requests outstanding at that moment can all still be unread in their sockets (uvicorn closes
    # those as idle). An attempt that caught none in flight is run again, up to SIGTERM_ATTEMPTS times; the
    # invariants are checked on every attempt and never retried.
    for attempt_number in range(1, SIGTERM_ATTEMPTS + 1):
        prefix = f"term-{uuid.uuid4().hex[:8]}"
        calls, term_at, code, waited, log_offset = await _sigterm_with_load(chaos, product, customer, prefix)
        rows = await chaos.query(
            "orders",
            "SELECT idempotency_key, status FROM orders WHERE idempotency_key LIKE $1",
            f"{prefix}-%",
        )
        taken = {row["idempotency_key"] for row in rows}
        answered = {a.target for a in calls.attempts if a.ok}
        in_flight = [a for a in calls.attempts if a.started < term_at < a.ended]
        dropped = taken - answered
        answered_wrong = [a for a in calls.attempts if a.status is not None and not a.ok]
        caught = any(a.ok for a in in_flight)
        invariants = [
            (
                "every request the service took was answered (in-flight requests completed)",
                not dropped and not answered_wrong,
                f"orders created without an answer: {len(dropped)}; non-2xx answers: {_describe(answered_wrong)}",
            ),
            (
                "the service exited cleanly after draining",
                _graceful(code, chaos.platform.layout.log_file("orders"), log_offset),
                f"exit code {code} after {waited:.1f} s",
            ),
        ]
        if caught or attempt_number == SIGTERM_ATTEMPTS or not all(ok for _, ok, _ in invariants):
            break
        await chaos.restart("orders")
    result.check(
        "requests were in flight at SIGTERM",
        caught,
        f"{sum(a.ok for a in in_flight)} answered after the signal (attempt {attempt_number} of {SIGTERM_ATTEMPTS})",
    )
    for name, ok, detail in invariants:
        result.check(name, ok, detail)
    await chaos.restart("orders")

    # 2. preStop-style drain: stop routing to one instance, let its in-flight requests finish, then SIGTERM it.
    copy = await asyncio.to_thread(chaos.lab.start_service_copy, "orders-b", "orders")
    backends = [chaos.url("orders"), copy.url]
    in_flight_by: Counter[str] = Counter()
    served: Counter[str] = Counter()
    drained = Recorder()
    stop = asyncio.Event()
    async with httpx.AsyncClient(timeout=20) as client:

        async def routed(worker: int) -> None:
            target = backends[(sum(served.values()) + worker) % len(backends)]
            in_flight_by[target] += 1
            try:
                answer = drained.add(
                    await attempt(
                        client,
                        "POST",
                        f"{target}/orders/",
                        json=_order_body(product, worker),
                        headers=customer.headers,
                        target=target,
                    )
                )
            finally:
                in_flight_by[target] -= 1
            served[target] += answer.ok

        load = asyncio.create_task(run_until(stop, 12, routed))
        await asyncio.sleep(1.5)
        backends.remove(copy.url)  # the endpoint is taken out of rotation first (preStop)

        async def copy_idle() -> bool:
            return in_flight_by[copy.url] == 0

        await poll(copy_idle, 10, interval=0.01)
        copy_log_offset = _log_size(copy.log_file)
        os.kill(copy.popen.pid, signal.SIGTERM)
        code, waited = await _wait_exit(copy.popen.pid, 20)
        await asyncio.sleep(1.0)  # traffic goes on to the remaining instance
        stop.set()
        await load
    await asyncio.to_thread(chaos.lab.stop_extra, "orders-b")
    result.load = f"in flight: {calls.summary()}; drained: {drained.summary()}"
    result.check(
        "with a preStop drain: zero failed requests at the client",
        not drained.failures,
        _describe(drained.failures),
    )
    result.check(
        "the drained instance had served traffic and exited cleanly",
        served[copy.url] > 0 and _graceful(code, copy.log_file, copy_log_offset),
        f"served {served[copy.url]}, exit code {code} after {waited:.1f} s",
    )
    result.seconds = time.monotonic() - started
    return result


# -- payments killed mid-saga --------------------------------------------------------------------------------------
async def payments_killed(chaos: ChaosLab) -> ScenarioResult:
    result = ScenarioResult("payments killed mid-saga")
    started = time.monotonic()
    stock = 10_000
    products = [p["id"] for p in await chaos.new_products(2, stock=stock)]
    gateway = chaos.platform.gateway_url
    calls = Recorder()
    stop = asyncio.Event()
    async with httpx.AsyncClient(timeout=30) as client:

        async def place(worker: int) -> None:
            customer = chaos.customers[worker % len(chaos.customers)]
            headers = customer.headers | {"Idempotency-Key": f"pay-{uuid.uuid4()}"}
            body = _order_body(products[worker % len(products)], worker)
            calls.add(await attempt(client, "POST", f"{gateway}/orders/", json=body, headers=headers))

        load = asyncio.create_task(run_until(stop, 8, place))
        await asyncio.sleep(1.5)
        await asyncio.to_thread(chaos.platform.kill_service, "payments")  # SIGKILL: no drain, no goodbye
        await asyncio.sleep(2.0)
        stop.set()
        await load

    async def rows() -> list:
        return await chaos.query(
            "orders",
            "SELECT id::text AS id, product_id, quantity, status, failure_reason FROM orders "
            "WHERE product_id = ANY($1)",
            products,
        )

    async def settled() -> bool:
        return all(r["status"] in ("completed", "failed") for r in await rows())

    settle = await poll(settled, 20, interval=0.5)
    await chaos.restart("payments")
    orders = await rows()
    stock_now = {
        r["id"]: r["stock"]
        for r in await chaos.query("inventory", "SELECT id, stock FROM products WHERE id = ANY($1)", products)
    }
    held = await chaos.query(
        "inventory",
        "SELECT order_id::text AS order_id, product_id, quantity, status FROM reservations "
        "WHERE product_id = ANY($1)",
        products,
    )
    completed = [o for o in orders if o["status"] == "completed"]
    failed = [o for o in orders if o["status"] == "failed"]
    reserved_ids = {r["order_id"] for r in held if r["status"] == "reserved"}
    result.load = calls.summary()
    result.check(
        "orders completed before the kill and failed after it",
        completed and failed,
        f"{len(completed)} completed, {len(failed)} failed "
        f"(reasons: {dict(Counter((o['failure_reason'] or '')[:40] for o in failed))})",
    )
    result.check(
        "no order stuck in pending/processing",
        settle is not None,
        f"statuses: {dict(Counter(o['status'] for o in orders))}",
    )
    lost = {
        p: stock - stock_now[p] - sum(o["quantity"] for o in completed if o["product_id"] == p)
        for p in products
    }
    result.check(
        "stock taken == stock of completed orders (none lost)",
        not any(lost.values()),
        f"units missing per product: {lost}",
    )
    result.check(
        "reservations held exactly by the completed orders (failed ones released)",
        reserved_ids == {o["id"] for o in completed},
        f"held by failed orders: {len(reserved_ids & {o['id'] for o in failed})}, "
        f"completed without a held reservation: {len({o['id'] for o in completed} - reserved_ids)}",
    )
    failed_ids = [o["id"] for o in failed]

    async def still_charged() -> list:
        return await chaos.query(
            "payments",
            "SELECT order_id::text AS order_id FROM payments WHERE status = 'authorized' "
            "AND order_id = ANY($1::uuid[])",
            failed_ids,
        )

    async def all_refunded() -> bool:
        return not await still_charged()

    # A charge whose answer the kill lost is looked up and refunded once payments is back (orders retries in
    # the background every 2 s, and waits out a grace period for charges still landing).
    refunded_after = await poll(all_refunded, REFUND_SECONDS, interval=0.5)
    refunded = await chaos.query(
        "payments",
        "SELECT count(*) AS n FROM payments WHERE status = 'refunded' AND order_id = ANY($1::uuid[])",
        failed_ids,
    )
    result.check(
        f"no failed order keeps an authorized payment (refunded within {REFUND_SECONDS:g} s of payments' return)",
        refunded_after is not None,
        f"{refunded[0]['n']} failed orders had been charged; all refunded after {refunded_after:.1f} s"
        if refunded_after is not None
        else f"{len(await still_charged())} failed orders with an authorized (unrefunded) payment",
    )
    result.seconds = time.monotonic() - started
    return result


Scenario = Callable[[ChaosLab], Awaitable[ScenarioResult]]

SCENARIOS: dict[str, Scenario] = {
    "redis": redis_outage,
    "postgres": postgres_restart,
    "sigterm": sigterm_under_load,
    "payments": payments_killed,
}
