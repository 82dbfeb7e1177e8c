"""The platform the scenarios run against: its own embedded Postgres and Redis (safe to stop and crash), its own
free ports and `chaos_<service>` databases, prod's service settings, a few customers with tokens."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import dataclass

import asyncpg
import httpx
import redis.asyncio as redis

from commerce_ops.bench.lab import Lab
from commerce_ops.bench.workload import Customer, create_customers, create_products, login
from commerce_ops.local.database import run_sync

LABEL = "chaos"
CUSTOMERS = 4


@dataclass
class ChaosLab:
    lab: Lab
    admin_token: str
    customers: list[Customer]

    @classmethod
    def start(
        cls,
        echo: Callable[[str], None] = lambda _m: None,
        overrides: dict[str, dict[str, str]] | None = None,
    ) -> ChaosLab:
        """`overrides`: per-service settings over prod's (`ops chaos` gives none)."""
        lab = Lab.create(LABEL, environment="prod", stop_timeout=10, overrides=overrides)
        try:
            echo(f"chaos: starting the platform with embedded Postgres and Redis in {lab.work_dir}")
            lab.platform.start(progress=lambda msg: echo(f"  {msg}"))
            admin, customers = run_sync(_accounts(lab))
        except BaseException:
            lab.stop()
            raise
        return cls(lab, admin, customers)

    @property
    def platform(self):
        return self.lab.platform

    def url(self, name: str) -> str:
        return self.lab.url(name)

    def stop(self) -> None:
        self.lab.stop()

    async def new_products(self, count: int, stock: int) -> list[dict]:
        async with httpx.AsyncClient(timeout=30) as http:
            return await create_products(http, self.url("inventory"), self.admin_token, count, stock=stock)

    async def query(self, service: str, sql: str, *args) -> list[asyncpg.Record]:
        """Rows from a service's own database (the ground truth the invariants are checked against)."""
        conn = await asyncpg.connect(self.platform.database_url(service), timeout=10)
        try:
            return await conn.fetch(sql, *args)
        finally:
            await conn.close()

    def redis(self) -> redis.Redis:
        return redis.from_url(self.platform.redis_url(), decode_responses=True, socket_timeout=1)

    async def restart(self, name: str) -> None:
        """Brings a stopped or killed service back (waits until it is ready)."""
        await asyncio.to_thread(_restart, self.platform, name)


def _restart(platform, name: str) -> None:
    if platform.pid(name) is None:
        platform.start_service(name)
        platform.wait_ready([name])
    else:
        platform.restart_service(name)


async def _accounts(lab: Lab) -> tuple[str, list[Customer]]:
    platform = lab.platform
    async with httpx.AsyncClient(timeout=30) as http:
        admin = await login(
            http, platform.url("users"), platform.admin_username, platform.secrets.admin_password
        )
        customers = await create_customers(http, platform.url("users"), CUSTOMERS, prefix=LABEL)
    return admin, customers
