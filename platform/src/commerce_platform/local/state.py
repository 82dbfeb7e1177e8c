"""`<local dir>/run/state.json`: what `ops dev up` started, so `ops dev status/down` (another process) can find it.

Holds pids, ports and paths only, never secrets.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from pathlib import Path

from commerce_platform.local.processes import ProcessRecord


@dataclass
class RunState:
    port_offset: int = 0
    db_prefix: str = ""
    supervisor_pid: int | None = None
    postgres_data_dir: str | None = None  # set when Postgres is embedded
    redis: ProcessRecord | None = None  # set when Redis is embedded
    processes: dict[str, ProcessRecord] = field(default_factory=dict)  # services and the gateway

    def to_json(self) -> dict:
        return {
            "port_offset": self.port_offset,
            "db_prefix": self.db_prefix,
            "supervisor_pid": self.supervisor_pid,
            "postgres_data_dir": self.postgres_data_dir,
            "redis": self.redis.to_json() if self.redis else None,
            "processes": {name: rec.to_json() for name, rec in self.processes.items()},
        }

    @classmethod
    def from_json(cls, data: dict) -> RunState:
        return cls(
            port_offset=data.get("port_offset", 0),
            db_prefix=data.get("db_prefix", ""),
            supervisor_pid=data.get("supervisor_pid"),
            postgres_data_dir=data.get("postgres_data_dir"),
            redis=ProcessRecord(**data["redis"]) if data.get("redis") else None,
            processes={name: ProcessRecord(**rec) for name, rec in data.get("processes", {}).items()},
        )

    def save(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(".tmp")
        tmp.write_text(json.dumps(self.to_json(), indent=2, sort_keys=True))
        os.replace(tmp, path)

    @classmethod
    def load(cls, path: Path) -> RunState | None:
        try:
            return cls.from_json(json.loads(path.read_text()))
        except FileNotFoundError:
            return None
