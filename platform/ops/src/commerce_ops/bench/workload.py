"""Test data through the public API (users, tokens, products), shared by the bench and the chaos suite."""

from __future__ import annotations

import asyncio
import secrets
import uuid
from dataclasses import dataclass

import httpx


class WorkloadError(RuntimeError):
    pass


@dataclass(frozen=True)
class Customer:
    username: str
    token: str

    @property
    def headers(self) -> dict[str, str]:
        return bearer(self.token)


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def _expect(response: httpx.Response, *statuses: int) -> dict:
    if response.status_code not in statuses:
        raise WorkloadError(
            f"{response.request.method} {response.request.url.path} → {response.status_code}: {response.text[:300]}"
        )
    return response.json()


async def login(http: httpx.AsyncClient, users_url: str, username: str, password: str) -> str:
    response = await http.post(f"{users_url}/token", data={"username": username, "password": password})
    return _expect(response, 200)["access_token"]


async def create_products(
    http: httpx.AsyncClient,
    inventory_url: str,
    admin_token: str,
    count: int,
    *,
    stock: int,
    price: str = "12.50",
) -> list[dict]:
    tag = uuid.uuid4().hex[:8]

    async def one(i: int) -> dict:
        body = {"name": f"bench {tag} #{i}", "price": price, "stock": stock}
        return _expect(
            await http.post(f"{inventory_url}/products/", json=body, headers=bearer(admin_token)), 201
        )

    return list(await asyncio.gather(*(one(i) for i in range(count))))


async def create_customers(
    http: httpx.AsyncClient, users_url: str, count: int, *, prefix: str = "bench", concurrency: int = 4
) -> list[Customer]:
    """Registers `count` users and logs each in (password hashing is slow on purpose: bounded concurrency)."""
    gate = asyncio.Semaphore(concurrency)
    tag = uuid.uuid4().hex[:8]

    async def one(i: int) -> Customer:
        username = f"{prefix}-{tag}-{i}"
        password = secrets.token_urlsafe(16)
        async with gate:
            body = {"username": username, "email": f"{username}@example.com", "password": password}
            _expect(await http.post(f"{users_url}/users/", json=body), 201)
            return Customer(username, await login(http, users_url, username, password))

    return list(await asyncio.gather(*(one(i) for i in range(count))))
