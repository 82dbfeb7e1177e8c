"""`<local dir>/run/state.json`: what `ops dev up` started, so `ops dev status/down` (another process) can find it.

Holds pids, ports and paths only, never secrets.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from pathlib import Path

from commerce_ops.local.processes import ProcessRecord


@dataclass
class RunState:
    port_offset: int = 0
    db_prefix: str = ""
    supervisor_pid: int | None = None
    production_like: bool = False  # how `up` ran the servers, so `ops dev restart` runs them the same way
    # `ops dev up --set` (never secrets), so `ops dev restart` starts a service with them again
    env_overrides: dict[str, dict[str, str]] = field(default_factory=dict)
    external_database: bool = False  # started with DATABASE_URL (not recorded: it may hold a password)
    external_redis: bool = False  # started with REDIS_URL
    postgres_data_dir: str | None = None  # set when Postgres is embedded
    redis: ProcessRecord | None = None  # set when Redis is embedded
    processes: dict[str, ProcessRecord] = field(default_factory=dict)  # services and the gateway

    def to_json(self) -> dict:
        return {
            "port_offset": self.port_offset,
            "db_prefix": self.db_prefix,
            "supervisor_pid": self.supervisor_pid,
            "production_like": self.production_like,
            "env_overrides": self.env_overrides,
            "external_database": self.external_database,
            "external_redis": self.external_redis,
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
            production_like=data.get("production_like", False),
            env_overrides=data.get("env_overrides", {}),
            external_database=data.get("external_database", False),
            external_redis=data.get("external_redis", False),
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
