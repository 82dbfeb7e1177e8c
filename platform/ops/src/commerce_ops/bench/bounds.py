"""What Redis and Postgres themselves serve on this machine, measured in the same run as the services: Redis's own
`redis-benchmark` (GET of the cached product's key) and Postgres's own `pgbench` (the product SELECT by primary
key, prepared), both with the bench's connection count. Neither involves Python, so they bound every row above."""

from __future__ import annotations

import csv
import io
import math
import re
import shutil
import subprocess
from pathlib import Path
from urllib.parse import parse_qs, unquote, urlsplit

from commerce_ops.bench.wrk import LoadResult, ensure_debian_tool

REDIS_TOOLS = "redis-tools"  # Debian's package with redis-benchmark


class BoundError(RuntimeError):
    pass


def redis_benchmark_binary(echo=print) -> str:
    return ensure_debian_tool("redis-benchmark", REDIS_TOOLS, echo)


def pgbench_binary() -> str | None:
    """pgbench of the embedded Postgres (pgserver ships it next to `postgres`), else one on PATH."""
    try:
        import pgserver

        shipped = Path(pgserver.__file__).parent / "pginstall" / "bin" / "pgbench"
        if shipped.exists():
            return str(shipped)
    except ImportError:
        pass
    return shutil.which("pgbench")


def _redis_target(url: str) -> list[str]:
    parts = urlsplit(url)
    query = parse_qs(parts.query)
    if parts.scheme == "unix":
        args = ["-s", parts.path]
        db = query.get("db", ["0"])[0]
    else:
        args = ["-h", parts.hostname or "127.0.0.1", "-p", str(parts.port or 6379)]
        db = (parts.path or "/0").lstrip("/") or "0"
    if parts.password:
        args += ["-a", unquote(parts.password)]
    return [*args, "--dbnum", db]


def redis_get(binary: str, url: str, key: str, *, connections: int, requests: int) -> LoadResult:
    """redis-benchmark GET <key>, no pipelining, `connections` clients."""
    argv = [binary, *_redis_target(url), "-c", str(connections), "-n", str(requests), "--csv", "GET", key]
    done = subprocess.run(argv, capture_output=True, text=True, timeout=300)
    if done.returncode != 0:
        raise BoundError(f"redis-benchmark failed: {done.stderr.strip()[-300:]}")
    rows = list(csv.reader(io.StringIO(done.stdout)))
    header, values = rows[0], rows[-1]
    figures = dict(zip(header, values, strict=False))
    rps = float(figures["rps"])
    shown = " ".join("<password>" if prev == "-a" else a for prev, a in zip(["", *argv], argv, strict=False))
    return LoadResult(
        requests=requests,
        seconds=requests / rps if rps else 0.0,
        p50_ms=float(figures.get("p50_latency_ms", "nan")),
        p90_ms=float("nan"),
        p99_ms=float(figures.get("p99_latency_ms", "nan")),
        mean_ms=float(figures.get("avg_latency_ms", "nan")),
        max_ms=float(figures.get("max_latency_ms", "nan")),
        errors=0,
        non_2xx=0,
        command=shown,
    )


def pg_select(binary: str, url: str, product_id: int, *, connections: int, seconds: float) -> LoadResult:
    """pgbench -S style: the product SELECT by primary key, prepared, `connections` clients for `seconds`."""
    # `:id` is a bind parameter of the prepared statement, as asyncpg sends it.
    script = f"\\set id {int(product_id)}\nSELECT id, name, price, stock FROM products WHERE id = :id;\n"
    argv = [
        binary,
        "-n",  # no vacuum of pgbench's own tables (there are none)
        "-M",
        "prepared",
        "-c",
        str(connections),
        "-j",
        "2",
        "-T",
        str(max(1, math.ceil(seconds))),
        "-f",
        "-",
        url,
    ]
    done = subprocess.run(argv, input=script, capture_output=True, text=True, timeout=seconds + 120)
    if done.returncode != 0:
        raise BoundError(f"pgbench failed: {done.stderr.strip()[-300:]}")
    tps = re.search(r"tps = ([\d.]+) \(without initial connection time\)", done.stdout)
    latency = re.search(r"latency average = ([\d.]+) ms", done.stdout)
    transactions = re.search(r"number of transactions actually processed: (\d+)", done.stdout)
    if not tps or not transactions:
        raise BoundError(f"pgbench: unexpected output: {done.stdout[-300:]}")
    count = int(transactions.group(1))
    rate = float(tps.group(1))
    return LoadResult(
        requests=count,
        seconds=count / rate if rate else 0.0,
        p50_ms=float("nan"),
        p90_ms=float("nan"),
        p99_ms=float("nan"),
        mean_ms=float(latency.group(1)) if latency else float("nan"),
        max_ms=float("nan"),
        errors=0,
        non_2xx=0,
        command=" ".join([*argv[:-1], "<inventory database URL>"]),
    )
