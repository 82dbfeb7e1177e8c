"""Not collected on its own (no `test_` file name): tests/repo/test_ops_test.py runs it through `ops test` to see
which servers a run gets and what an interrupted run leaves behind."""

from __future__ import annotations

import asyncio
import os
import time
from pathlib import Path

import asyncpg
import redis


def test_uses_the_runs_servers(data_servers, run_databases, redis_db):
    url = run_databases.create("probe")

    async def database() -> str:
        conn = await asyncpg.connect(url, timeout=10)
        try:
            return await conn.fetchval("SELECT current_database()")
        finally:
            await conn.close()

    with redis.Redis.from_url(redis_db.url) as client:
        client.set("probe", "1")
    print(
        f"PROBE database={asyncio.run(database())} redis_db={redis_db.db} owner={redis_db.owner}", flush=True
    )
    time.sleep(float(os.environ.get("PROBE_WAIT", "0")))
    # PROBE_TOGETHER="<folder>:<n>": hold the claims until n probes hold theirs.
    if together := os.environ.get("PROBE_TOGETHER"):
        folder, count = together.rsplit(":", 1)
        Path(folder, str(os.getpid())).touch()
        deadline = time.monotonic() + 120
        while len(list(Path(folder).iterdir())) < int(count) and time.monotonic() < deadline:
            time.sleep(0.05)
