"""The order saga of this checkout and of another one (e.g. main), side by side in one run.

`python -m commerce_ops.bench.compare --baseline /work/main` starts two production-like platforms (the bench lab,
each with its own embedded Postgres and Redis): this checkout's, and one whose processes import the baseline
checkout's sources first (`PYTHONPATH`: its services, kit, program and tooling, gateway included; same venv, so
the same dependency versions). It seeds both alike, then measures, round after round and alternating so the
machine's drift hits both sides alike: the saga direct to orders and through the local gateway, with the CPU each
process (and the Postgres backends of each side's databases) spends per order. A shared, loaded machine moves
req/s by tens of percent between rows; CPU per order moves far less, so both are reported, with after/before
ratios. Nothing is written to BENCHMARKS.md: the output is a Markdown table to paste with its analysis.

`--bound`: one more row, on this checkout's side only, in the same rounds: the saga's own SQL done by one process
with no HTTP hops (bench/saga_bound_app.py) under the same load, against the same databases; what the hops cost.
"""

from __future__ import annotations

import argparse
import asyncio
import functools
import os
import statistics
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import asyncpg
import httpx

from commerce_ops.bench import saga_bound_app
from commerce_ops.bench.lab import Lab
from commerce_ops.bench.runner import _postgres_backend_cpu, _wait_idle, saga_outcomes, seed
from commerce_ops.bench.wrk import LoadResult, ensure_wrk, run_wrk
from commerce_platform import catalogue

SERVICES = tuple(spec.name for spec in catalogue.SERVICES)
BOUND = "saga SQL in one process, no hops (bound)"
SOURCE_DIRS = ("platform/src", "platform/ops/src", *(f"services/{s}/src" for s in ("kit", *SERVICES)))


@dataclass
class Side:
    name: str  # "before" / "after"
    lab: Lab
    label: str  # the database prefix, which names the Postgres backends serving this side
    rows: Path | None = None
    product_id: int = 0
    runs: dict[str, list[tuple[LoadResult, dict[str, float]]]] = field(default_factory=dict)


def baseline_pythonpath(checkout: Path) -> str:
    dirs = [checkout / d for d in SOURCE_DIRS]
    missing = [str(d) for d in dirs if not d.is_dir()]
    if missing:
        raise SystemExit(f"--baseline {checkout}: not a checkout of this repo (missing {', '.join(missing)})")
    return os.pathsep.join(str(d) for d in dirs)


def side_env(settings: list[str]) -> dict[str, dict[str, str]]:
    env: dict[str, dict[str, str]] = {}
    for setting in settings:
        service, sep, assignment = setting.partition(":")
        name, eq, value = assignment.partition("=")
        if not (sep and eq and service in SERVICES and name):
            raise SystemExit(
                f"--after-env {setting!r}: expected SERVICE:NAME=VALUE, SERVICE one of {SERVICES}"
            )
        env.setdefault(service, {})[name] = value
    return env


def internal_calls(side: Side) -> dict[str, int]:
    """The POSTs inventory and payments answered per internal route so far (their /metrics), so the hops an
    order took can be told: with coalescing, fewer calls than orders."""
    calls: dict[str, int] = {}
    for service in ("inventory", "payments"):
        text = httpx.get(side.lab.platform.url(service) + "/metrics", timeout=10).text
        for line in text.splitlines():
            if line.startswith("http_server_request_duration_seconds_count{") and 'method="POST"' in line:
                route = line.split('route="', 1)[1].split('"', 1)[0]
                if route in (
                    "/internal/reservations",
                    "/internal/reservations/batch",
                    "/internal/payments",
                    "/internal/payments/batch",
                ):
                    calls[route] = calls.get(route, 0) + int(float(line.rsplit(" ", 1)[1]))
    return calls


async def bound_orders(database_url: str) -> int:
    """The orders the bound placed (its own user id), to tell them from the saga's."""
    conn = await asyncpg.connect(database_url, timeout=10)
    try:
        return await conn.fetchval("SELECT count(*) FROM orders WHERE user_id = $1", saga_bound_app.USER_ID)
    finally:
        await conn.close()


def start_bound(side: Side) -> None:
    """The saga's SQL in one process (saga_bound_app), on this side's databases."""
    platform = side.lab.platform
    env = {
        f"BOUND_{s.upper()}_DATABASE_URL": platform.database_url(s)
        for s in ("orders", "inventory", "payments")
    }
    side.lab.start_extra(
        "saga-bound", "commerce_ops.bench.saga_bound_app:app", env | {"LOG_LEVEL": "WARNING"}
    )


def start_side(
    name: str,
    label: str,
    pythonpath: str | None,
    echo: Callable[[str], None],
    env: dict[str, dict[str, str]] | None = None,
) -> Side:
    """`env`: per-service settings for this side (e.g. {"orders": {"ORDER_BATCH_SIZE": "1"}})."""
    lab = Lab.create(label, overrides={"*": {"LOG_LEVEL": "WARNING"}} | (env or {}))
    # Every process of this side (services, gateway) imports the baseline first; the gateway reads LOG_LEVEL from
    # the environment it inherits (as in `ops bench`).
    inherited = {"PYTHONPATH": pythonpath, "LOG_LEVEL": "WARNING"}
    previous = {k: os.environ.get(k) for k in inherited}
    for k, v in inherited.items():
        if v is not None:
            os.environ[k] = v
    try:
        echo(f"compare: starting {name} in {lab.work_dir}")
        lab.platform.start(progress=lambda msg: echo(f"  {name}: {msg}"))
        side = Side(name, lab, label)
        data = asyncio.run(seed(lab))
        side.rows, side.product_id = data.rows_file, data.product_id
        # The DB read: an inventory copy of this side with its cache off (as `ops bench`'s row).
        lab.start_service_copy("inventory-nocache", "inventory", PRODUCT_CACHE_ENABLED="false")
    finally:
        for k, v in previous.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v
    return side


def measure(
    side: Side,
    key: str,
    url: str,
    pids: dict[str, int | None],
    seconds: float,
    warmup: float,
    connections: int,
    wrk: str,
    orders: bool = True,
) -> None:
    rows = ("/orders/", side.rows) if orders else None
    names = tuple(pids)
    run_wrk(url, seconds=warmup, connections=connections, binary=wrk, post_rows=rows)
    before, pg_before = _wait_idle(pids), _postgres_backend_cpu(side.label)
    load = run_wrk(url, seconds=seconds, connections=connections, binary=wrk, post_rows=rows)
    after, pg_after = _wait_idle(pids), _postgres_backend_cpu(side.label)
    served = load.requests + connections
    cpu = {n: 1000 * (after[n] - before[n]) / served for n in names}
    cpu["postgres"] = 1000 * (pg_after - pg_before) / served
    side.runs.setdefault(key, []).append((load, cpu))


def table(sides: list[Side]) -> str:
    before, after = sides
    lines = [
        "| row | side | req/s (median of the rounds) | p50 ms | p99 ms | failed | CPU ms/request by process "
        "| CPU ms/request, all |",
        "| --- | --- | ---: | ---: | ---: | ---: | --- | ---: |",
    ]
    summary = {}
    keys = [*before.runs, *(k for k in after.runs if k not in before.runs)]
    for key in keys:
        for side in sides:
            runs = side.runs.get(key)
            if not runs:
                continue
            rps = statistics.median(r.rps for r, _ in runs)
            p50 = statistics.median(r.p50_ms for r, _ in runs)
            p99 = statistics.median(r.p99_ms for r, _ in runs)
            failed = sum(r.failed for r, _ in runs)
            cpu = {n: statistics.median(c[n] for _, c in runs) for n in runs[0][1]}
            total = sum(cpu.values())
            summary[key, side.name] = (rps, p99, total)
            per = ", ".join(f"{n} {v:.2f}" for n, v in cpu.items())
            lines.append(
                f"| {key} | {side.name} | {rps:,.0f} ({', '.join(f'{r.rps:.0f}' for r, _ in runs)}) | "
                f"{p50:.0f} | {p99:.0f} | {failed} | {per} | {total:.2f} |"
            )
    lines.append("")
    for key in before.runs:
        b, a = summary[key, "before"], summary[key, "after"]
        lines.append(
            f"- {key}: after/before {a[0] / b[0]:.2f}× the req/s, p99 {b[1]:.0f} → {a[1]:.0f} ms, "
            f"CPU per request {b[2]:.2f} → {a[2]:.2f} ms ({a[2] / b[2]:.2f}×)."
        )
    return "\n".join(lines)


def main() -> None:
    global print
    print = functools.partial(print, flush=True)  # progress shows as it happens, also into a file
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--baseline", type=Path, required=True, help="the other checkout (e.g. /work/main)")
    parser.add_argument("--seconds", type=float, default=10)
    parser.add_argument("--warmup", type=float, default=2)
    parser.add_argument("--connections", type=int, default=32)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument(
        "--bound", action="store_true", help="also the saga's SQL in one process, no hops (this side only)"
    )
    parser.add_argument(
        "--after-env",
        action="append",
        default=[],
        metavar="SERVICE:NAME=VALUE",
        help="a setting for one service of this checkout's side (repeatable), e.g. orders:ORDER_BATCH_SIZE=1",
    )
    parser.add_argument(
        "--before-env",
        action="append",
        default=[],
        metavar="SERVICE:NAME=VALUE",
        help="the same for the baseline's side (e.g. two settings of one checkout: --baseline .)",
    )
    parser.add_argument("--saga-only", action="store_true", help="only the saga rows (no reads)")
    args = parser.parse_args()
    pythonpath = baseline_pythonpath(args.baseline.resolve())
    wrk = ensure_wrk(print)
    started = time.monotonic()
    load_before = os.getloadavg()
    sides: list[Side] = []
    try:
        sides.append(start_side("before", "cmpb", pythonpath, print, side_env(args.before_env)))
        sides.append(start_side("after", "cmpa", None, print, side_env(args.after_env)))
        if args.bound:
            start_bound(sides[1])
        for round_ in range(args.rounds):
            for side in sides if round_ % 2 == 0 else reversed(sides):
                platform = side.lab.platform
                services = {n: platform.pid(n) for n in SERVICES}
                product = f"/products/{side.product_id}"
                rows = [
                    ("saga direct to orders", platform.url("orders") + "/orders/", services, True),
                    (
                        "saga via the gateway",
                        platform.gateway_url + "/orders/",
                        {"gateway": platform.pid("gateway"), **services},
                        True,
                    ),
                    (
                        "DB read (cache off)",
                        side.lab.url("inventory-nocache") + product,
                        {"inventory": side.lab.extras["inventory-nocache"].pid},
                        False,
                    ),
                    (
                        "cached read",
                        platform.url("inventory") + product,
                        {"inventory": services["inventory"]},
                        False,
                    ),
                ]
                if args.saga_only:
                    rows = rows[:2]
                if "saga-bound" in side.lab.extras:
                    bound = side.lab.extras["saga-bound"]
                    rows.insert(1, (BOUND, bound.url + "/orders/", {"bound": bound.pid}, True))
                for key, url, pids, orders in rows:
                    print(f"compare: round {round_ + 1}, {side.name}, {key}")
                    measure(side, key, url, pids, args.seconds, args.warmup, args.connections, wrk, orders)
                    load = side.runs[key][-1][0]
                    print(
                        f"  {load.rps:,.0f} req/s  p99 {load.p99_ms:.0f} ms  failed {load.failed}  "
                        f"load average {os.getloadavg()[0]:.1f}"
                    )
        outcomes = {s.name: asyncio.run(saga_outcomes(s.lab.platform.database_url("orders"))) for s in sides}
        calls = {s.name: internal_calls(s) for s in sides}
        bound = asyncio.run(bound_orders(sides[1].lab.platform.database_url("orders"))) if args.bound else 0
    finally:
        for side in sides:
            side.lab.stop()
    print()
    print(
        f"Side by side, {args.rounds} rounds alternating, wrk {args.connections} connections, {args.warmup:g} s "
        f"warm-up + {args.seconds:g} s per row; load average {load_before[0]:.1f} before, "
        f"{os.getloadavg()[0]:.1f} after; {time.monotonic() - started:.0f} s in all. Orders by status: {outcomes}. "
        f"Internal POSTs answered (all rows, warm-ups included): {calls}; of the after side's orders, {bound} "
        "were the bound's (no internal calls)."
    )
    print()
    print(table(sides))


if __name__ == "__main__":
    main()
