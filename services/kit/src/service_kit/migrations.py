"""Apply a service's plain-SQL migrations (`<package>/migrations/NNNN_name.sql`), idempotently.

Run as `migrate <package>` (the platform's migration Job, and `ops dev up`). An advisory lock makes concurrent
runs (several replicas starting at once) safe; each file is applied once, in its own transaction.
"""

from __future__ import annotations

import argparse
import asyncio
import importlib.resources
import json
import os
import sys

import asyncpg

_LEDGER = """
CREATE TABLE IF NOT EXISTS schema_migrations (
    version text PRIMARY KEY,
    applied_at timestamptz NOT NULL DEFAULT now()
)
"""


def migration_files(package: str) -> list[tuple[str, str]]:
    folder = importlib.resources.files(package).joinpath("migrations")
    files = sorted((f.name, f.read_text()) for f in folder.iterdir() if f.name.endswith(".sql"))
    if not files:
        raise ValueError(f"no migrations found in {package}/migrations")
    return files


async def apply_migrations(database_url: str, package: str) -> list[str]:
    """Apply pending migrations; returns the versions applied now (empty when up to date)."""
    files = migration_files(package)
    conn = await asyncpg.connect(database_url, timeout=10)
    try:
        await conn.execute("SELECT pg_advisory_lock(hashtext($1))", f"migrate:{package}")
        await conn.execute(_LEDGER)
        done = {r["version"] for r in await conn.fetch("SELECT version FROM schema_migrations")}
        applied = []
        for version, sql in files:
            if version in done:
                continue
            async with conn.transaction():
                await conn.execute(sql)
                await conn.execute("INSERT INTO schema_migrations (version) VALUES ($1)", version)
            applied.append(version)
        return applied
    finally:
        conn.terminate() if conn.is_closed() else await conn.close()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="migrate", description=__doc__.splitlines()[0])
    parser.add_argument("package", help="the service's Python package, e.g. users_service")
    args = parser.parse_args(argv)
    url = os.environ.get("DATABASE_URL")
    if not url:
        print("migrate: DATABASE_URL is not set", file=sys.stderr)
        return 2
    try:
        applied = asyncio.run(apply_migrations(url, args.package))
    except (OSError, asyncpg.PostgresError, ValueError, ModuleNotFoundError) as exc:
        print(f"migrate: {args.package}: {type(exc).__name__}: {exc}", file=sys.stderr)
        return 1
    print(json.dumps({"message": "migrations applied", "package": args.package, "applied": applied}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
