"""The near cache in front of Redis (service_kit.cache.NearCache) on the session's real Redis: kept coherent by
Redis's invalidation pushes across processes, cleared while tracking is down, and never filled by a read an
invalidation overtook. Then two inventory processes: a write through one is seen by the other within the bound.
"""

from __future__ import annotations

import asyncio
import json
import time

import httpx
import pytest
import redis as sync_redis
import redis.asyncio as redis
from harness import auth

from inventory_service.settings import PRODUCT_CACHE_PREFIX
from service_kit.cache import JsonCache, NearCache

# How long a change may take to reach another replica's copy while tracking is up (one push on loopback; the
# margin is for a loaded machine). The copies below live far longer (LONG), so only a push can explain a change
# seen within this.
SEEN_WITHIN_SECONDS = 1.5
LONG = 300.0


async def _eventually(check, within: float = SEEN_WITHIN_SECONDS) -> float:
    started = time.monotonic()
    while not await check():
        assert time.monotonic() - started < within, "not seen within the staleness bound"
        await asyncio.sleep(0.01)
    return time.monotonic() - started


@pytest.fixture
async def client(services):
    client = redis.from_url(services.redis_url(), decode_responses=True, socket_timeout=2)
    yield client
    await client.aclose()


@pytest.fixture
async def near(client):
    async with NearCache(client, "neartest", LONG) as near:
        await _eventually(lambda: _true(near.live), within=10)
        yield near


async def _true(value: bool) -> bool:
    return value


async def _read_into_copy(cache: JsonCache, key: int) -> str | None:
    """Reads until the copy holds the key: a read that the push of the test's own write overtook (it arrives on
    another connection, at its own time) rightly does not fill it."""
    name = f"{cache.prefix}:{key}"

    async def filled() -> bool:
        await cache.get_text(key)
        return cache.near.get(name) is not None

    await _eventually(filled)
    return cache.near.get(name)


def _tracking_clients(client_list: list[dict], name: str) -> list[dict]:
    return [c for c in client_list if c.get("name") == name and "t" in c.get("flags", "")]


async def test_a_redis_hit_fills_the_copy_and_any_writer_invalidates_it(client, near):
    cache = JsonCache(client, "neartest", 60, near=near)
    await client.set("neartest:1", '{"v":1}')
    assert await _read_into_copy(cache, 1) == '{"v":1}'
    assert await cache.get_text(1) == '{"v":1}'  # from the copy now
    # Another process (this client stands in for any replica, or an operator) changes the key in Redis.
    await client.set("neartest:1", '{"v":2}')
    await _eventually(lambda: _true(near.get("neartest:1") is None))
    assert await cache.get_text(1) == '{"v":2}'
    # Expiry and deletion are changes too; keys outside the prefix are not tracked.
    await client.set("other:1", "x")
    await client.delete("neartest:1")
    await _eventually(lambda: _true(near.get("neartest:1") is None))
    assert await cache.get_text(1) is None


async def test_own_invalidation_is_immediate(client, near):
    cache = JsonCache(client, "neartest", 60, near=near)
    await client.set("neartest:2", '{"v":1}')
    assert await _read_into_copy(cache, 2) == '{"v":1}'
    await cache.delete(2)
    assert near.get("neartest:2") is None  # no wait: this process's next read sees its own write


async def test_a_read_overtaken_by_an_invalidation_does_not_fill(client, near):
    token = near.fill_token()
    near.invalidate(["neartest:3"])  # what a push arriving between the Redis read and the fill does
    near.fill("neartest:3", "old", token)
    assert near.get("neartest:3") is None
    near.fill("neartest:3", "new", near.fill_token())
    assert near.get("neartest:3") == "new"


async def test_a_flush_clears_the_copy(services, client, near):
    cache = JsonCache(client, "neartest", 60, near=near)
    await client.set("neartest:4", '{"v":1}')
    assert await _read_into_copy(cache, 4) == '{"v":1}'
    await client.execute_command("FLUSHDB")
    await _eventually(lambda: _true(near.get("neartest:4") is None))


async def test_while_tracking_is_down_the_copy_is_empty_and_bypassed(client, near):
    cache = JsonCache(client, "neartest", 60, near=near)
    await client.set("neartest:5", '{"v":1}')
    assert await _read_into_copy(cache, 5) == '{"v":1}'
    ours = _tracking_clients(await client.client_list(), near.client_name)
    assert ours, "the near cache holds a tracking connection"
    for entry in ours:
        await client.client_kill_filter(_id=entry["id"])
    await _eventually(lambda: _true(not near.live or near.get("neartest:5") is None), within=5)
    # Changed while nobody tracks: the copy can't hold the old value, it was cleared with the connection.
    await client.set("neartest:5", '{"v":2}')
    assert await cache.get_text(5) == '{"v":2}'
    # Tracking comes back by itself (retry_seconds) and the copy works again.
    await _eventually(lambda: _true(near.live), within=10)
    await client.set("neartest:5", '{"v":3}')
    await _eventually(lambda: _true(near.get("neartest:5") is None))
    assert await _read_into_copy(cache, 5) == '{"v":3}'


@pytest.fixture(scope="module")
def replicas(services):
    """The session's inventory, and a second inventory process on the same Postgres and Redis whose copies
    would live far longer than the bound."""
    first = services.start("inventory")
    second = services.start_extra("inventory", env={"PRODUCT_NEAR_CACHE_SECONDS": str(LONG)})
    yield first, second
    services.stop(second)


def test_a_write_through_one_replica_is_seen_by_the_other_within_the_bound(replicas, admin_token, services):
    first, second = replicas
    admin = auth(admin_token)
    with httpx.Client(timeout=20) as http:
        created = http.post(
            f"{first.url}/products/", json={"name": "replicated", "price": "5.00", "stock": 3}, headers=admin
        ).json()
        path = f"/products/{created['id']}"
        for _ in range(3):  # the second replica now answers from its copy
            assert http.get(second.url + path).json() == created
        with sync_redis.Redis.from_url(services.redis_url(), decode_responses=True) as direct:
            names = {c.get("name") for c in direct.client_list() if "t" in c.get("flags", "")}
        assert f"near-cache:{PRODUCT_CACHE_PREFIX}:{second.process.pid}" in names  # it does track
        patched = http.patch(first.url + path, json={"price": "6.00"}, headers=admin)
        assert patched.status_code == 200

        async def second_sees_it() -> bool:
            return http.get(second.url + path).json()["price"] == "6.00"

        asyncio.run(_eventually(second_sees_it))
        # A write straight into Redis (another writer of the cache) reaches the copy the same way.
        with sync_redis.Redis.from_url(services.redis_url(), decode_responses=True) as direct:
            document = patched.json() | {"name": "written into redis"}
            direct.set(f"{PRODUCT_CACHE_PREFIX}:{created['id']}", json.dumps(document, separators=(",", ":")))

        async def second_sees_redis() -> bool:
            return http.get(second.url + path).json()["name"] == "written into redis"

        asyncio.run(_eventually(second_sees_redis))
