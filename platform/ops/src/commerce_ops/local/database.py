"""Each service's database and login, created the way the cluster's init Job does (same `dbinit` statements),
then each service's migrations run through the same `migrate` entry point as the migration Job.
"""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
from pathlib import Path
from urllib.parse import quote, urlsplit, urlunsplit

from commerce_platform import dbinit


class DatabaseSetupError(RuntimeError):
    pass


def service_url(admin_url: str, role: str, password: str) -> str:
    """The admin URL's server, with the service's own login and database (role name = database name)."""
    parts = urlsplit(admin_url)
    host = parts.netloc.rpartition("@")[2]
    netloc = f"{quote(role, safe='')}:{quote(password, safe='')}@{host}"
    return urlunsplit((parts.scheme, netloc, f"/{role}", parts.query, parts.fragment))


async def ensure_database(admin_url: str, role: str, password: str) -> None:
    """Idempotent: login role (password reset to ours), then its database owned by it."""
    import asyncpg

    try:
        conn = await asyncpg.connect(admin_url, timeout=10)
    except (OSError, ValueError, asyncpg.PostgresError, asyncpg.InterfaceError) as exc:
        raise DatabaseSetupError(
            f"cannot connect to Postgres as admin: {type(exc).__name__}: {exc}"
        ) from None
    try:
        await conn.execute(dbinit.role_statement(role))
        # ALTER ROLE takes no bind parameters; let the server quote the password literal (format %L).
        alter = await conn.fetchval(
            "SELECT format('ALTER ROLE %I WITH LOGIN PASSWORD %L', $1::text, $2::text)", role, password
        )
        await conn.execute(alter)
        if not await conn.fetchval(dbinit.database_exists_query(), role):
            try:
                await conn.execute(dbinit.create_database_statement(role, role))
            except asyncpg.DuplicateDatabaseError:
                pass  # created concurrently by another `ops dev up`: fine, it's ours either way
    finally:
        await conn.close()


def ensure_databases(admin_url: str, logins: dict[str, str]) -> None:
    """`logins` maps role/database name → password."""

    async def all_of_them() -> None:
        for role, password in logins.items():
            await ensure_database(admin_url, role, password)

    run_sync(all_of_them())


def run_migrations(packages: dict[str, str], timeout: float = 120) -> None:
    """Runs `migrate <package>` (exactly what the migration Job runs) for each package → its DATABASE_URL, all at
    once: each service has its own database, so they don't wait on each other."""
    migrate = Path(sys.executable).with_name("migrate")
    running = {}
    for package, database_url in packages.items():
        argv = (
            [str(migrate), package]
            if migrate.exists()
            else [sys.executable, "-m", "service_kit.migrations", package]
        )
        running[package] = subprocess.Popen(
            argv,
            env={**os.environ, "DATABASE_URL": database_url},
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            text=True,
        )
    failures = []
    for package, proc in running.items():
        try:
            output, _ = proc.communicate(timeout=timeout)
        except subprocess.TimeoutExpired:
            proc.kill()
            output, _ = proc.communicate()
            output += f" (no result after {timeout:.0f}s)"
        if proc.returncode != 0:
            failures.append(f"{package}: {output.strip()[-600:]}")
    if failures:
        raise DatabaseSetupError("migrations failed: " + "; ".join(failures))


def run_sync(coro):
    """Runs a coroutine to completion from sync code, even when the caller is itself inside an event loop
    (e.g. an async test using LocalPlatform): then it runs on a fresh loop in a worker thread."""
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return asyncio.run(coro)
    from concurrent.futures import ThreadPoolExecutor

    with ThreadPoolExecutor(max_workers=1) as pool:
        return pool.submit(asyncio.run, coro).result()
