"""Where the local runtime keeps its state: one folder (`.local/` by default), always git-ignored."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from commerce_ops.paths import repo_root

LOCAL_DIR_ENV = "OPS_LOCAL_DIR"


@dataclass(frozen=True)
class LocalLayout:
    root: Path

    @classmethod
    def resolve(cls, local_dir: str | Path | None = None) -> LocalLayout:
        chosen = local_dir or os.environ.get(LOCAL_DIR_ENV) or repo_root() / ".local"
        return cls(Path(chosen).expanduser().resolve())

    @property
    def secrets_file(self) -> Path:
        return self.root / "secrets.json"

    @property
    def postgres_dir(self) -> Path:
        return self.root / "postgres"

    @property
    def redis_dir(self) -> Path:
        return self.root / "redis"

    @property
    def run_dir(self) -> Path:
        return self.root / "run"

    @property
    def state_file(self) -> Path:
        return self.run_dir / "state.json"

    @property
    def logs_dir(self) -> Path:
        return self.run_dir / "logs"

    def log_file(self, name: str) -> Path:
        return self.logs_dir / f"{name}.log"

    @property
    def gitignore(self) -> Path:
        return self.root / ".gitignore"

    @property
    def traces_dir(self) -> Path:
        return self.run_dir / "traces"

    def trace_file(self, name: str) -> Path:
        """The spans `name` exported (OpenTelemetry's console exporter: one JSON span a line)."""
        return self.traces_dir / f"{name}.jsonl"

    def ensure(self) -> None:
        """Creates the folders, and a `.gitignore` of `*` in the root: wherever the folder is (OPS_LOCAL_DIR may
        point inside the repo), `git add -A` never picks up its secrets, data or logs."""
        for folder in (self.root, self.run_dir, self.logs_dir, self.traces_dir):
            folder.mkdir(parents=True, exist_ok=True)
        if not self.gitignore.exists():
            self.gitignore.write_text("# ops dev's state folder (secrets, data, logs): never committed\n*\n")
