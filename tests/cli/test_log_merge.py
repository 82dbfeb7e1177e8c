"""`ops dev logs` and the foreground follower print every service's lines in time order (not one file's batch
after another's), and `--tail N` starts with each file's last N lines."""

from __future__ import annotations

import io
import json
from pathlib import Path

from rich.console import Console

from commerce_ops.local.logs import LogFollower


def _line(stamp: str, message: str) -> str:
    return json.dumps({"timestamp": f"2026-12-02 09:00:{stamp}", "level": "INFO", "message": message}) + "\n"


def _follower(files: dict[str, Path], **kwargs) -> tuple[LogFollower, io.StringIO]:
    out = io.StringIO()
    return LogFollower(files, Console(file=out, width=200, color_system=None), **kwargs), out


def _printed(out: io.StringIO) -> list[tuple[str, str]]:
    """(service, message) per printed line."""
    rows = []
    for line in out.getvalue().splitlines():
        name, *rest = line.split()
        rows.append((name, rest[-1] if rest[0][0].isdigit() else " ".join(rest)))
    return rows


def test_one_poll_merges_files_by_timestamp_and_keeps_a_traceback_after_its_line(tmp_path):
    users, orders = tmp_path / "users.log", tmp_path / "orders.log"
    follower, out = _follower({"users": users, "orders": orders})
    users.write_text(_line("01,000", "u1") + _line("03,000", "u3") + _line("05,000", "u5"))
    orders.write_text(
        _line("02,000", "o2")
        + _line("04,000", "o4")
        + "Traceback (most recent call last):\n"
        + _line("06,000", "o6")
    )
    assert follower.poll() == 7
    assert _printed(out) == [
        ("users", "u1"),
        ("orders", "o2"),
        ("users", "u3"),
        ("orders", "o4"),
        ("orders", "Traceback (most recent call last):"),
        ("users", "u5"),
        ("orders", "o6"),
    ]


def test_tail_starts_with_the_last_n_lines_of_each_file_then_follows(tmp_path):
    users, gateway = tmp_path / "users.log", tmp_path / "gateway.log"
    users.write_text("".join(_line(f"{i:02d},000", f"u{i}") for i in range(10)))
    gateway.write_text(_line("00,500", "g0"))
    follower, out = _follower({"users": users, "gateway": gateway}, tail=2)
    assert follower.poll() == 3
    assert _printed(out) == [("gateway", "g0"), ("users", "u8"), ("users", "u9")]
    with users.open("a") as handle:
        handle.write(_line("20,000", "u20"))
    assert follower.poll() == 1  # --tail applies to the start only
    assert _printed(out)[-1] == ("users", "u20")


def test_tail_zero_prints_nothing_old(tmp_path):
    users = tmp_path / "users.log"
    users.write_text(_line("01,000", "old"))
    follower, out = _follower({"users": users}, tail=0)
    assert follower.poll() == 0
    with users.open("a") as handle:
        handle.write(_line("02,000", "new"))
    assert follower.poll() == 1
    assert _printed(out) == [("users", "new")]
