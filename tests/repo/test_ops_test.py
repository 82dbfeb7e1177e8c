"""`ops test` brings its own Postgres and Redis: started once per run, used by every pytest process through
TEST_DATABASE_URL / TEST_REDIS_URL, stopped on the way out (also on Ctrl-C), and given servers are used instead of
embedded ones, by concurrent runs that never share a database or a Redis db."""

from __future__ import annotations

import asyncio
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import asyncpg
import psutil
import pytest
import redis

from commerce_ops.local.dataservers import CLAIM_KEY, with_redis_db

pytestmark = pytest.mark.heavy(25)

REPO = Path(__file__).resolve().parents[2]
OPS = [str(Path(sys.executable).with_name("ops")), "test"]
PROBE = "tests/repo/runner_probe.py"
EMBEDDED = re.compile(r"^ops test: embedded postgres and redis in (\S+)$", re.M)
PROBE_LINE = re.compile(r"PROBE database=(\S+) redis_db=(\d+) owner=(\S+)")


def _env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("TEST_") and k != "PYTEST_ADDOPTS"}
    return env | extra


def _leftovers(folder: str) -> list[str]:
    """Processes whose command line names the run's server folder (postgres, redis-server)."""
    found = []
    for proc in psutil.process_iter(["cmdline", "status"]):
        cmdline = " ".join(proc.info["cmdline"] or ())
        if folder in cmdline and proc.info["status"] != psutil.STATUS_ZOMBIE:
            found.append(cmdline)
    return found


@pytest.mark.parametrize("interrupt", ["ctrl-c", "sigterm"])
def test_a_run_starts_embedded_servers_and_an_interrupt_leaves_nothing(tmp_path, interrupt):
    """Ctrl-C reaches the whole process group (ops and pytest); SIGTERM reaches ops only, which passes it on."""
    output = tmp_path / "out.txt"
    with output.open("w") as out:
        run = subprocess.Popen(
            [*OPS, PROBE, "-s", "-p", "no:cacheprovider"],
            cwd=REPO,
            env=_env(PROBE_WAIT="120"),
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # its own process group, to send it Ctrl-C the way a terminal does
        )
    try:
        deadline = time.monotonic() + 120
        while not PROBE_LINE.search(output.read_text()):
            assert run.poll() is None and time.monotonic() < deadline, output.read_text()
            time.sleep(0.2)
        folder = EMBEDDED.search(output.read_text()).group(1)
        assert _leftovers(folder), "the embedded servers should be running while the test runs"
        if interrupt == "ctrl-c":
            os.killpg(run.pid, signal.SIGINT)
        else:
            run.send_signal(signal.SIGTERM)
        assert run.wait(60) != 0
    finally:
        if run.poll() is None:
            os.killpg(run.pid, signal.SIGKILL)
    assert _leftovers(folder) == []
    assert not Path(folder).exists()
    assert "Traceback" not in output.read_text()


def test_given_servers_are_used_and_concurrent_runs_never_share_names(data_servers, tmp_path):
    """Two runs at once on the same given servers: both pass, neither starts a server, and each has its own
    database and Redis db (claimed on the server, released after). Each probe holds its claims until both do,
    so the two runs overlap however slowly either starts."""
    env = _env(
        TEST_DATABASE_URL=data_servers.database_url,
        TEST_REDIS_URL=data_servers.redis_url,
        PROBE_TOGETHER=f"{tmp_path}:2",
    )
    runs = [
        subprocess.Popen(
            [*OPS, PROBE, "-s", "-p", "no:cacheprovider"],
            cwd=REPO,
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        for _ in range(2)
    ]
    outputs = [run.communicate(timeout=180)[0] for run in runs]
    assert [run.returncode for run in runs] == [0, 0], outputs
    assert not any(EMBEDDED.search(text) for text in outputs)
    seen = [PROBE_LINE.search(text).groups() for text in outputs]
    assert seen[0][0] != seen[1][0] and seen[0][1] != seen[1][1] and seen[0][2] != seen[1][2], seen
    for database, db, owner in seen:
        # Released: flushed and the claim gone. (Another test process of this run may claim the freed index the
        # moment it is free, so the db need not stay empty: what must be gone is the probe's data and claim.)
        with redis.Redis.from_url(with_redis_db(data_servers.redis_url, int(db))) as client:
            assert client.get("probe") is None
            assert client.get(CLAIM_KEY) != owner.encode()
        assert asyncio.run(_database_exists(data_servers.database_url, database)) is False


async def _database_exists(admin_url: str, name: str) -> bool:
    conn = await asyncpg.connect(admin_url, timeout=10)
    try:
        return await conn.fetchval("SELECT EXISTS (SELECT 1 FROM pg_database WHERE datname = $1)", name)
    finally:
        await conn.close()
