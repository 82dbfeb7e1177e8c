"""The log follower: JSON lines from several files become one readable, service-tagged stream."""

from __future__ import annotations

import io
import json

import pytest
from rich.console import Console

from commerce_ops.local.logs import LogFollower

pytestmark = pytest.mark.e2e


def test_follows_appended_lines_pretty_prints_json_and_passes_other_lines_through(tmp_path):
    users, orders = tmp_path / "users.log", tmp_path / "orders.log"
    users.write_text('{"message": "old line, before following"}\n')
    out = io.StringIO()
    follower = LogFollower(
        {"users": users, "orders": orders}, Console(file=out, width=200, color_system=None)
    )
    record = {
        "timestamp": "2026-11-29 20:44:30,541",
        "level": "WARNING",
        "logger": "service.request",
        "message": "request",
        "service": "users",
        "request_id": "abcdef0123456789",
        "status": 503,
        "path": "/ready",
        "client_ip": None,
    }
    with users.open("a") as handle:
        handle.write(json.dumps(record) + "\n" + '{"message": "half a line')  # the rest arrives later
    orders.write_text("Traceback (most recent call last):\n")
    assert follower.poll() == 2
    with users.open("a") as handle:
        handle.write(' completed"}\n')
    assert follower.poll() == 1
    assert follower.poll() == 0
    lines = out.getvalue().splitlines()
    assert lines[0].split() == [
        "users",
        "20:44:30,541",
        "WARNING",
        "request",
        "status=503",
        "path=/ready",
        "rid=abcdef01",
    ]
    assert lines[1].split(maxsplit=1) == ["orders", "Traceback (most recent call last):"]
    assert lines[2].split(maxsplit=2)[2] == "half a line completed"
    assert "old line" not in out.getvalue()
