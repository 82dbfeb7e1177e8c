"""The asyncpg pool: created in the lifespan, closed on shutdown."""

from __future__ import annotations

import asyncio
import logging

import asyncpg

from service_kit.settings import ServiceSettings

logger = logging.getLogger("service.db")


async def _keep_session(conn: asyncpg.Connection) -> None:
    """The pool's reset on release, instead of asyncpg's default reset query (advisory unlock all, CLOSE ALL,
    UNLISTEN *, RESET ALL: one more round trip, and Postgres work, per query through the pool). The services keep
    no session state on pooled connections: no SET, LISTEN, advisory locks or cursors outside a transaction
    (the migrations' advisory lock is on a connection of their own). asyncpg still rolls back a transaction left
    open and drops listeners before calling this."""


async def create_pool(settings: ServiceSettings) -> asyncpg.Pool:
    # min_size=0 so the process starts (and /health answers) even while Postgres is unreachable;
    # /ready reports it and connections are made as soon as it is back.
    pool = await asyncpg.create_pool(
        dsn=settings.database_url.get_secret_value(),
        min_size=0,
        max_size=settings.db_pool_max_size,
        command_timeout=10,
        max_inactive_connection_lifetime=300,
        reset=_keep_session,
    )
    await _prewarm(pool, settings.db_pool_min_size, settings.dependency_timeout_seconds * 3)
    return pool


async def _prewarm(pool: asyncpg.Pool, count: int, timeout: float) -> None:
    """Open `count` connections up front so the first requests don't pay for them; failure is not fatal."""
    if count <= 0:
        return
    conns = []
    try:
        async with asyncio.timeout(timeout):
            for _ in range(count):
                conns.append(await pool.acquire())
    except (OSError, asyncpg.PostgresError, TimeoutError) as exc:
        logger.warning("postgres not reachable at startup; will connect on demand", extra={"error": str(exc)})
    finally:
        for conn in conns:
            await pool.release(conn)


async def ping(pool: asyncpg.Pool, timeout: float) -> None:
    async with asyncio.timeout(timeout):
        async with pool.acquire() as conn:
            await conn.fetchval("SELECT 1")
