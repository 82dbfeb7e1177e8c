"""The schemathesis scenario must be able to fail: against a deliberately faulty API it reports both faults."""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from commerce_ops.chaos.schema import run_st
from commerce_ops.local.ports import free_port
from service_kit.serve import uvicorn_argv

pytestmark = pytest.mark.chaos
# Both faults are in every response of their operation: the coverage phase alone meets them; a few random examples
# on top, as tests/chaos/test_resilience.py sends the real services.
SCHEMA_EXAMPLES = 3


def test_schemathesis_harness_reports_server_errors_and_schema_violations(tmp_path: Path) -> None:
    port = free_port()
    log = (tmp_path / "faulty.log").open("wb")
    server = subprocess.Popen(
        uvicorn_argv(
            "faulty_api:app",
            port,
            host="127.0.0.1",
            graceful_shutdown=None,
            python=sys.executable,
            extra=["--app-dir", str(Path(__file__).parent), "--log-level", "warning"],
        ),
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    try:
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            try:
                if httpx.get(f"http://127.0.0.1:{port}/openapi.json", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                time.sleep(0.1)
        run = run_st(f"http://127.0.0.1:{port}", token="unused", max_examples=SCHEMA_EXAMPLES)
    finally:
        server.terminate()
        server.wait(10)
        log.close()
    assert not run.clean
    report = "\n".join(run.failures)
    assert "/items/{item_id}" in report and "Server error" in report, report
    assert "/labels/{item_id}" in report and "schema" in report.lower(), report
