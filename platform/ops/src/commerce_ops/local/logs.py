"""Follow the JSON logs of all local processes, one pretty line each, a colour per service."""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from pathlib import Path

from rich.console import Console
from rich.text import Text

COLOURS = ("cyan", "magenta", "green", "yellow", "blue", "bright_red", "bright_cyan")
LEVEL_STYLES = {
    "DEBUG": "dim",
    "INFO": "",
    "WARNING": "bold yellow",
    "ERROR": "bold red",
    "CRITICAL": "bold red",
}
_SHOWN = {"timestamp", "level", "logger", "message", "service", "request_id", "taskName", "color_message"}


def format_line(name: str, raw: str, colour: str, width: int = 9) -> Text:
    """One log line as rich Text: `12:00:01 users     INFO  request  method=GET path=/health status=200`.
    Lines that aren't JSON (a crash's traceback, uvicorn's first words) are shown as they are."""
    text = Text()
    text.append(f"{name:<{width}} ", style=f"bold {colour}")
    try:
        record = json.loads(raw)
        if not isinstance(record, dict):
            raise ValueError
    except ValueError:
        return text.append(raw)
    stamp = str(record.get("timestamp", ""))
    clock = stamp[11:23] if len(stamp) >= 23 else stamp
    level = str(record.get("level", "INFO")).upper()
    text.append(f"{clock} ", style="dim")
    text.append(f"{level:<7} ", style=LEVEL_STYLES.get(level, ""))
    text.append(str(record.get("message", "")))
    for key, value in record.items():
        if key not in _SHOWN and value is not None:
            text.append(f"  {key}=", style="dim")
            text.append(str(value))
    if record.get("request_id"):
        text.append(f"  rid={str(record['request_id'])[:8]}", style="dim")
    return text


def _timestamp(raw: str) -> str | None:
    """The line's own `timestamp` (ISO-like, so it sorts as text), or None for a line that isn't JSON."""
    try:
        record = json.loads(raw)
    except ValueError:
        return None
    return str(record.get("timestamp", "")) if isinstance(record, dict) else None


class LogFollower:
    """Tails `<name>.log` files from their current end (or start, or their last `tail` lines), printing complete
    lines as they arrive, in time order across files: each batch is sorted by the lines' own timestamps (a line
    without one, like a traceback's, stays right after the line before it in its file)."""

    def __init__(
        self, files: dict[str, Path], console: Console, from_start: bool = False, tail: int | None = None
    ) -> None:
        self.console = console
        self.colours = {name: COLOURS[i % len(COLOURS)] for i, name in enumerate(files)}
        self.width = max(len(name) for name in files) if files else 9
        self.files = files
        self.offsets = {
            name: 0 if from_start or tail is not None else _size(path) for name, path in files.items()
        }
        self.partial = {name: "" for name in files}
        self.last_stamp = {name: "" for name in files}
        self.tail = tail  # applies to the first poll only

    def poll(self) -> int:
        """Prints what was appended since the last poll; returns the number of lines printed."""
        batch: list[tuple[str, str, str]] = []  # (timestamp, name, line)
        for name, path in self.files.items():
            try:
                with open(path, "rb") as handle:
                    handle.seek(self.offsets[name])
                    chunk = handle.read()
            except FileNotFoundError:
                continue
            if not chunk:
                continue
            self.offsets[name] += len(chunk)
            data = self.partial[name] + chunk.decode("utf-8", errors="replace")
            *lines, self.partial[name] = data.split("\n")
            lines = [line for line in lines if line.strip()]
            if self.tail is not None:
                lines = lines[-self.tail :] if self.tail else []
            for line in lines:
                # A line without a stamp (a traceback) goes right after the line before it in its file, or, if
                # none came before, counts as logged now (as the logger would stamp it: local time, `,ms`).
                self.last_stamp[name] = _timestamp(line) or self.last_stamp[name] or _now()
                batch.append((self.last_stamp[name], name, line))
        self.tail = None
        batch.sort(key=lambda item: item[0])  # stable: each file's own order is kept among equal stamps
        for _, name, line in batch:
            self.console.print(format_line(name, line, self.colours[name], self.width), soft_wrap=True)
        return len(batch)

    def follow(self, keep_going: Callable[[], bool], interval: float = 0.2) -> None:
        while keep_going():
            if not self.poll():
                time.sleep(interval)
        self.poll()


def _now() -> str:
    now = time.time()
    return time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(now)) + f",{int(now % 1 * 1000):03d}"


def _size(path: Path) -> int:
    try:
        return path.stat().st_size
    except FileNotFoundError:
        return 0
