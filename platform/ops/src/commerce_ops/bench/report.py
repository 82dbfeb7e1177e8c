"""BENCHMARKS.md: the services section (between its markers) rendered from a `BenchRun`.

The file has two owned sections; this module rewrites only the one between SERVICES_BEGIN and SERVICES_END and
keeps everything else (the render section) byte for byte.
"""

from __future__ import annotations

from pathlib import Path

from commerce_ops.bench.runner import SAGA_CUSTOMERS, SAGA_PRODUCTS, SAGA_STOCK, BenchRun

SERVICES_BEGIN = "<!-- services:begin -->"
SERVICES_END = "<!-- services:end -->"
RENDER_BEGIN = "<!-- render:begin -->"
RENDER_END = "<!-- render:end -->"
ANALYSIS_FILE = Path(__file__).with_name("analysis.md")

_NEW_FILE = f"""# Benchmarks

Figures measured on this kind of machine by the repo's own scripts. Absolute numbers drift on a shared, noisy
machine; the ratios measured within one run are what to compare.

{RENDER_BEGIN}
{RENDER_END}

{SERVICES_BEGIN}
{SERVICES_END}
"""


class ReportError(RuntimeError):
    pass


# Each row's physical bound, measured in the same run: the bare route doing just the row's one Redis GET or
# pooled SELECT, and for those, Redis's and Postgres's own benchmark tools.
BOUND_OF = {
    "cached": "bare_redis",
    "cached_metrics": "bare_redis",
    "cached_nometrics": "bare_redis",
    "cached_2workers": "bare_redis",
    "cached_logged": "bare_redis",
    "bare_redis": "redis_benchmark",
    "starlette_redis": "redis_benchmark",
    "db": "bare_db",
    "bare_db": "pgbench",
    "starlette_db": "pgbench",
}
BOUND_NAMES = {
    "bare_redis": "bare Redis GET route",
    "bare_db": "bare pooled SELECT route",
    "redis_benchmark": "redis-benchmark",
    "pgbench": "pgbench",
}
ROWS = (
    "ceiling",
    "kit_ceiling",
    "cached",
    "bare_redis",
    "starlette_redis",
    "cached_metrics",
    "cached_nometrics",
    "cached_2workers",
    "cached_logged",
    "db",
    "bare_db",
    "starlette_db",
    "redis_benchmark",
    "pgbench",
    "connect",
    "saga_direct",
    "saga",
    "saga_2workers",
    "ceiling_end",
)
NO_PYTHON = ("redis_benchmark", "pgbench")


def _ms(value: float) -> str:
    return "–" if value != value else f"{value:.1f}"  # NaN: the tool does not report it


def _vs_bound(run: BenchRun, key: str) -> str:
    bound = BOUND_OF.get(key)
    if bound is None or bound not in run.measured:
        return "–"
    return f"{run.ratio(key, bound):.2f}× {BOUND_NAMES[bound]}"


def render_section(run: BenchRun) -> str:
    m = run.measured
    lines = [
        "## Services: throughput, latency, memory (`ops bench`)",
        "",
        f"Measured {run.started_at:%Y-%m-%d %H:%M} UTC by `ops bench` (whole run {run.elapsed_seconds:.0f} s, "
        f"all on loopback).",
        "",
        f"- Machine: {run.machine['cpu']}, {run.machine['cores']} cores, {run.machine['ram']} RAM, "
        f"{run.machine['os']}; shared with the load generator, Postgres and Redis.",
        "- Versions: " + ", ".join(f"{k} {v}" for k, v in run.versions.items()) + ".",
        f"- Servers: one uvicorn worker per service, started by the local runtime as `{run.server_command}`; "
        f"settings of environment `{run.environment}` (pool sizes), LOG_LEVEL={run.log_level} for the services and "
        "the gateway (the per-request JSON log line is measured separately below).",
        "- Data: "
        + ", ".join(f"{name} {how}" for name, how in run.data_stores.items())
        + "; databases `bench_<service>`, fresh each run (`ops bench --database-url/--redis-url` to use servers "
        "you run).",
        f"- Load: wrk, {run.connections} connections, 2 threads, {run.warmup:g} s warm-up then {run.seconds:g} s "
        "measured per row; req/s counts 2xx answers only. Orders are POSTed round-robin by "
        f"{SAGA_CUSTOMERS} customers (own tokens) over {SAGA_PRODUCTS} fresh products with {SAGA_STOCK:,} stock each.",
        "- Command: `ops bench` (equivalently `./.ci/ops bench`).",
        "",
        "| measurement | req/s | p50 ms | p99 ms | vs ceiling | vs its bound (same run) | failed | "
        "server CPU ms/req |",
        "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |",
    ]
    for key in ROWS:
        if key not in m:
            continue
        load = m[key].load
        cpu = "–" if key in NO_PYTHON else f"{m[key].cpu_ms_total:.2f}"
        lines.append(
            f"| {m[key].label} | {load.rps:,.0f} | {_ms(load.p50_ms)} | {_ms(load.p99_ms)} | "
            f"{run.ratio(key):.2f}× | {_vs_bound(run, key)} | {load.failed} | {cpu} |"
        )
    logging_cost = 1 - m["cached_logged"].load.rps / m["cached"].load.rps
    saga_cpu = m["saga"].cpu_ms
    postgres_ms = m["saga"].postgres_cpu_ms or 0.0
    direct_cpu = m["saga_direct"].cpu_ms
    direct_postgres_ms = m["saga_direct"].postgres_cpu_ms or 0.0
    saga_total_ms = sum(saga_cpu.values()) + postgres_ms
    cores = int(run.machine["cores"])
    before, after = run.load_average or ((0.0,) * 3, (0.0,) * 3)
    outcomes = ", ".join(f"{n} {status}" for status, n in run.saga_outcomes.items()) or "none recorded"
    lines += [
        "",
        f"- Ratios are to the ceiling's mean over the run ({run.ceiling_rps:,.0f} req/s): it is measured first "
        "and last because the machine is shared and its spare capacity drifts.",
        f"- Pool vs connect-per-request: **{run.ratio('db', 'connect'):.2f}×** the throughput "
        f"(p50 {_ms(m['db'].load.p50_ms)} ms vs {_ms(m['connect'].load.p50_ms)} ms).",
        f"- Per-request JSON logging (LOG_LEVEL=INFO vs {run.log_level}) costs {logging_cost:.0%} of the cached "
        "read's throughput.",
        f"- Prometheus metrics (request histogram, in-flight gauge, cache counter; `/metrics` on its own port) cost "
        f"{run.metrics_cost:.1%} of the cached read's throughput and {run.metrics_cpu_cost:+.1%} server CPU per "
        "request (two otherwise identical inventory copies, measured back to back; on a shared machine a "
        "difference of a few percent is within the noise between two rows).",
        f"- Of the cached read's CPU per request, the kit's scaffolding and a response model take "
        f"{m['kit_ceiling'].cpu_ms_total - m['ceiling'].cpu_ms_total:.2f} ms over the bare ceiling and the read "
        f"itself (dependency, Redis GET, the cached JSON's check) "
        f"{m['cached'].cpu_ms_total - m['kit_ceiling'].cpu_ms_total:.2f} ms.",
        f"- One vs two uvicorn workers (cached read, metrics off in both): "
        f"{m['cached_nometrics'].load.rps:,.0f} vs {m['cached_2workers'].load.rps:,.0f} req/s "
        f"({run.ratio('cached_2workers', 'cached_nometrics'):.2f}×), server CPU "
        f"{m['cached_nometrics'].cpu_ms_total:.2f} vs {m['cached_2workers'].cpu_ms_total:.2f} ms/request."
        if "cached_2workers" in m
        else "- One vs two uvicorn workers: not measured in this run.",
        f"- Orders in the database after the run (warm-up included): {outcomes}.",
        f"- One vs two uvicorn workers for orders (saga direct, the other services unchanged): "
        f"{m['saga_direct'].load.rps:,.0f} vs {m['saga_2workers'].load.rps:,.0f} orders/s "
        f"({run.ratio('saga_2workers', 'saga_direct'):.2f}×), CPU {m['saga_direct'].cpu_ms_total:.1f} vs "
        f"{m['saga_2workers'].cpu_ms_total:.1f} ms/order."
        if "saga_2workers" in m
        else "- One vs two uvicorn workers for orders: not measured in this run.",
        "- Server CPU per request (user+system CPU time the serving processes spent on the measured requests, "
        "divided by them) depends far less than req/s on how busy the shared machine is: the cached read costs "
        f"{m['cached'].cpu_ms_total / m['ceiling'].cpu_ms_total:.1f}× the ceiling's CPU, the pooled DB read "
        f"{m['db'].cpu_ms_total / m['ceiling'].cpu_ms_total:.1f}×.",
        "- CPU per order, by process: "
        + ", ".join(f"{name} {ms:.1f} ms" for name, ms in saga_cpu.items())
        + f" = {sum(saga_cpu.values()):.1f} ms through the gateway; direct to orders "
        + ", ".join(f"{name} {ms:.1f} ms" for name, ms in direct_cpu.items())
        + f" = {sum(direct_cpu.values()):.1f} ms. The Postgres backends serving the bench's databases "
        f"{postgres_ms:.1f} ms more (direct: {direct_postgres_ms:.1f}; a lower bound: the WAL writer and "
        f"checkpointer are not counted). Through the gateway, on {cores} "
        f"cores the services alone cap the saga at about {cores * 1000 / max(sum(saga_cpu.values()), 0.001):.0f} "
        f"orders/s, services and Postgres together at about {cores * 1000 / max(saga_total_ms, 0.001):.0f}, "
        "before wrk and anything else on the machine take their share.",
        f"- Load average (1/5/15 min) before the run {before[0]:.1f}/{before[1]:.1f}/{before[2]:.1f}, after it "
        f"{after[0]:.1f}/{after[1]:.1f}/{after[2]:.1f}: other work shared the {cores} cores during the run.",
        "",
        "| service | RSS after load | memory request | RSS / request |",
        "| --- | ---: | ---: | ---: |",
    ]
    for figure in run.memory:
        lines.append(
            f"| {figure.service} | {figure.rss_bytes / 2**20:.0f} MiB | {figure.request} "
            f"(`environments/{run.environment}.yaml`) | {figure.ratio:.0%} |"
        )
    lines += ["", "| target | measured | verdict |", "| --- | --- | --- |"]
    lines += [f"| {v.target} | {v.measured} | {v.word} |" for v in run.verdicts()]
    if ANALYSIS_FILE.exists():
        lines += ["", ANALYSIS_FILE.read_text().strip()]
    wrk_lines = [f"    {m[key].load.command}" for key in m]
    lines += [
        "",
        "Load command lines of this run (wrk; redis-benchmark and pgbench for the bounds):",
        "",
        *wrk_lines,
    ]
    return "\n".join(lines)


def write_section(path: Path, section: str) -> None:
    """Replaces the services section of `path` (created with both sections' markers if missing, appended if the
    file exists without it)."""
    text = path.read_text() if path.exists() else _NEW_FILE
    if SERVICES_BEGIN not in text and SERVICES_END not in text:
        # Another section's owner created the file first: ours goes at the end, theirs stays as it is.
        text = f"{text.rstrip()}\n\n{SERVICES_BEGIN}\n{SERVICES_END}\n"
    if text.count(SERVICES_BEGIN) != 1 or text.count(SERVICES_END) != 1:
        raise ReportError(f"{path}: expected exactly one {SERVICES_BEGIN} and one {SERVICES_END} marker")
    head, rest = text.split(SERVICES_BEGIN)
    _, tail = rest.split(SERVICES_END)
    path.write_text(f"{head}{SERVICES_BEGIN}\n{section.strip()}\n{SERVICES_END}{tail}")
