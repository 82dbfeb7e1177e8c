"""Instructions per request, counted by valgrind's callgrind: for costs too small for wall-clock rows.

A throughput row on a shared 2-core machine moves by 20-50% between identical servers (BENCHMARKS.md), so a
cost of a few percent (the Prometheus metrics on the cached read) cannot be read from it. Callgrind counts the
instructions the server executes, which do not depend on what else the machine is doing.

For each variant: one inventory copy (the platform's env for it plus the variant's overrides) runs under
`valgrind --tool=callgrind --instr-atstart=no` (start-up runs uninstrumented) under one client's sequential
keep-alive GETs of a cached product; after a warm-up, instrumentation is switched on and the counters zeroed
(`callgrind_control -i on`, `-z`), and after `--seconds` dumped (`-d`): the dump's instructions over the requests
answered in between is the figure (± one request at each end).

    python -m commerce_ops.bench.instructions            # metrics on vs off, the cached read
"""

from __future__ import annotations

import argparse
import asyncio
import re
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import httpx

from commerce_ops.bench.lab import Lab
from commerce_ops.bench.runner import _admin
from commerce_ops.bench.workload import create_products, login

VARIANTS = {"metrics on": {}, "METRICS_ENABLED=false": {"METRICS_ENABLED": "false"}}


class Traffic(threading.Thread):
    """Sequential keep-alive GETs of one path, counted. Callgrind takes a command only while the server runs
    (a process blocked in epoll_wait does not answer, and nothing here may ptrace it), so every command is sent
    under this traffic, and the window's request count is read off the counter when the command is answered."""

    def __init__(self, url: str) -> None:
        super().__init__(daemon=True)
        self.url, self.done, self._halt = url, 0, threading.Event()

    def run(self) -> None:
        with httpx.Client(timeout=60) as http:
            while not self._halt.is_set():
                http.get(self.url).raise_for_status()
                self.done += 1

    def stop(self) -> None:
        self._halt.set()
        self.join(60)


def _callgrind_control(*args: str) -> None:
    done = subprocess.run(["callgrind_control", *args], capture_output=True, text=True, timeout=300)
    if "OK" not in done.stdout:
        raise RuntimeError(
            f"callgrind_control {' '.join(args)}: no answer: {done.stdout.strip()} {done.stderr.strip()}"
        )


def _total(out_dir: Path) -> int:
    """The summed `totals:` (Ir) of the dumps callgrind wrote on request (`callgrind.out.N`)."""
    total = 0
    for dump in out_dir.glob("callgrind.out.*"):
        found = re.search(r"^(?:totals|summary): (\d+)", dump.read_text(errors="replace"), re.M)
        total += int(found.group(1)) if found else 0
    return total


def instructions_per_request(
    lab: Lab, name: str, overrides: dict[str, str], path: str, seconds: float
) -> float:
    out_dir = Path(tempfile.mkdtemp(prefix="callgrind-", dir=lab.work_dir))
    wrap = (
        "valgrind",
        "--tool=callgrind",
        "--instr-atstart=no",
        f"--callgrind-out-file={out_dir}/callgrind.out",
    )
    extra = lab.start_service_copy(name, "inventory", wrap=wrap, timeout=600, **overrides)
    traffic = Traffic(extra.url + path)
    try:
        traffic.start()
        time.sleep(2)  # warm: the product is cached, every code path on the read taken
        _callgrind_control("-i", "on", str(extra.pid))
        time.sleep(1)
        _callgrind_control("-z", str(extra.pid))
        first = traffic.done
        time.sleep(seconds)
        _callgrind_control("-d", str(extra.pid))
        requests = traffic.done - first
    finally:
        traffic.stop()
        lab.stop_extra(name)
    return _total(out_dir) / requests


async def _product(lab: Lab) -> int:
    async with httpx.AsyncClient(timeout=30) as http:
        admin = await login(http, lab.platform.url("users"), *_admin(lab))
        (product,) = await create_products(http, lab.platform.url("inventory"), admin, 1, stock=10)
    return product["id"]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=20, help="counted seconds per variant")
    args = parser.parse_args(argv)
    if shutil.which("valgrind") is None or shutil.which("callgrind_control") is None:
        print("instructions: valgrind is missing; install it: apt-get install valgrind", file=sys.stderr)
        return 2
    lab = Lab.create("instr")
    try:
        lab.platform.start(progress=lambda msg: print(f"  {msg}", flush=True))
        path = f"/products/{asyncio.run(_product(lab))}"
        figures = {}
        for variant, overrides in VARIANTS.items():
            figures[variant] = instructions_per_request(
                lab, "inventory-callgrind", overrides, path, args.seconds
            )
            print(
                f"GET /products/{{id}}, warm cache, {variant}: {figures[variant]:,.0f} instructions/request"
            )
        on, off = figures["metrics on"], figures["METRICS_ENABLED=false"]
        print(f"metrics cost: {on / off - 1:+.1%} instructions per cached read ({on - off:+,.0f})")
    finally:
        lab.stop()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
