"""The inventory service over real HTTP: products with a Redis cache, admin writes, atomic reservations."""

from __future__ import annotations

import asyncio
import json
import time
import uuid

import asyncpg
import httpx
import pytest
from harness import auth, database_url, dead_database_url, dead_redis_url, redis_client, run_async

from commerce_platform import catalogue
from inventory_service.settings import PRODUCT_CACHE_PREFIX

pytestmark = pytest.mark.heavy(20)


@pytest.fixture(scope="module")
def inventory(start_service):
    return start_service("inventory")


@pytest.fixture(scope="module")
def client(inventory):
    with httpx.Client(base_url=inventory.url, timeout=20) as c:
        yield c


@pytest.fixture(scope="module")
def admin(admin_token):
    return auth(admin_token)


@pytest.fixture(scope="module")
def user(register_and_login):
    return auth(register_and_login("shopper").token)


@pytest.fixture(scope="module")
def caller(services, inventory):
    """Orders' service identity towards inventory (the reservations are for services only)."""
    return auth(services.service_token("inventory"))


@pytest.fixture(scope="module")
def cache():
    with redis_client() as client:
        yield client


@pytest.fixture
def product(client, admin):
    def create(stock: int = 10, price: str = "12.50", name: str = "widget") -> dict:
        response = client.post(
            "/products/", json={"name": name, "price": price, "stock": stock}, headers=admin
        )
        assert response.status_code == 201, response.text
        return response.json()

    return create


def cache_key(product_id: int) -> str:
    return f"{PRODUCT_CACHE_PREFIX}:{product_id}"


async def sql(query: str, *args):
    conn = await asyncpg.connect(database_url("inventory"))
    try:
        return await conn.fetchval(query, *args)
    finally:
        await conn.close()


def test_admin_creates_and_anyone_reads_a_product(client, product):
    created = product(stock=7, price="12.50", name="  lamp  ")
    assert created == {"id": created["id"], "name": "lamp", "price": "12.50", "stock": 7}
    assert client.get(f"/products/{created['id']}").json() == created


def test_reads_are_cached_in_redis_as_json_and_writes_invalidate(client, admin, product, cache):
    created = product(name="cached")
    key = cache_key(created["id"])
    assert not cache.exists(key)
    client.get(f"/products/{created['id']}")
    assert json.loads(cache.get(key)) == created
    assert 0 < cache.ttl(key) <= 60
    # A change behind the service's back is not seen while the entry lives: the read is a cache hit.
    run_async(sql("UPDATE products SET name = 'changed in db' WHERE id = $1", created["id"]))
    assert client.get(f"/products/{created['id']}").json()["name"] == "cached"
    patched = client.patch(f"/products/{created['id']}", json={"price": "9.99"}, headers=admin)
    assert patched.status_code == 200
    assert patched.json() == created | {"name": "changed in db", "price": "9.99"}
    assert not cache.exists(key)
    assert client.get(f"/products/{created['id']}").json()["price"] == "9.99"


def test_a_cache_hit_answers_exactly_the_bytes_of_a_miss(client, admin, product, cache):
    # Quotes, a backslash, non-ASCII and a control character: any serialiser difference would show here.
    created = product(name='Crème "brûlée" \\ ☃\t </script>', price="0.10")
    path = f"/products/{created['id']}"
    assert not cache.exists(cache_key(created["id"]))
    miss = client.get(path)
    assert cache.exists(cache_key(created["id"]))
    hit = client.get(path)
    for response in (miss, hit):
        assert response.status_code == 200
        assert response.headers["content-type"] == "application/json"
    # The hit, the miss and FastAPI's own serialisation of the same Product (the PATCH answer): one byte string.
    assert hit.content == miss.content == client.get(path).content
    assert hit.content.decode() == cache.get(cache_key(created["id"]))
    assert json.loads(hit.content) == created
    fastapi_serialised = client.patch(path, json={"stock": created["stock"]}, headers=admin).content
    assert hit.content == fastapi_serialised


def test_the_raw_json_read_keeps_the_product_schema_in_openapi(client):
    operation = client.get("/openapi.json").json()["paths"]["/products/{product_id}"]["get"]
    schema = operation["responses"]["200"]["content"]["application/json"]["schema"]
    assert schema == {"$ref": "#/components/schemas/Product"}
    assert "404" in operation["responses"]


def test_an_unreadable_cache_entry_is_a_miss(client, product, cache):
    created = product(name="recovering")
    extra_field = json.dumps(created | {"secret": "not ours"}, separators=(",", ":"))
    canonical = json.dumps(created, separators=(",", ":"))
    for garbage in ("{not json", json.dumps({"id": "x"}), extra_field, json.dumps(created)):
        cache.set(cache_key(created["id"]), garbage)
        # Until Redis's invalidation push reaches the service's near copy (well under a second), a read may
        # still answer from that copy; every answer is right, and the next miss rewrites the entry.
        deadline = time.monotonic() + 5
        while cache.get(cache_key(created["id"])) != canonical:
            assert time.monotonic() < deadline, "the unreadable entry was never replaced"
            assert client.get(f"/products/{created['id']}").json() == created


def test_missing_product_is_404_and_not_cached(client, cache):
    response = client.get("/products/987654321")
    assert response.status_code == 404 and response.json() == {"detail": "product not found"}
    assert not cache.exists(cache_key(987654321))


@pytest.mark.parametrize("bad_id", ["abc", "0", "-1", str(2**63)])
def test_bad_product_ids_are_422(client, bad_id):
    assert client.get(f"/products/{bad_id}").status_code == 422


def test_writes_need_an_admin(client, user, product):
    existing = product()
    body = {"name": "x", "price": "1.00", "stock": 1}
    for method, path in (("POST", "/products/"), ("PATCH", f"/products/{existing['id']}")):
        anonymous = client.request(method, path, json=body)
        assert anonymous.status_code == 401 and anonymous.headers["www-authenticate"] == "Bearer"
        forbidden = client.request(method, path, json=body, headers=user)
        assert forbidden.status_code == 403 and forbidden.json() == {"detail": "admin role required"}


@pytest.mark.parametrize(
    "body",
    [
        {"name": "x", "price": "1.00", "stock": -1},
        {"name": "x", "price": "1.001", "stock": 1},
        {"name": "x", "price": "-1", "stock": 1},
        {"name": "x", "price": "NaN", "stock": 1},
        {"name": "", "price": "1.00", "stock": 1},
        {"name": "x", "price": "1.00"},
        {"name": "x", "price": "1.00", "stock": 1, "id": 5},
    ],
)
def test_invalid_products_are_422(client, admin, body):
    response = client.post("/products/", json=body, headers=admin)
    assert response.status_code == 422 and isinstance(response.json()["detail"], list)


@pytest.mark.parametrize("body", [{}, {"stock": None}, {"stock": -5}, {"colour": "red"}])
def test_invalid_patches_are_422(client, admin, product, body):
    existing = product()
    assert client.patch(f"/products/{existing['id']}", json=body, headers=admin).status_code == 422


def test_patch_of_a_missing_product_is_404(client, admin):
    assert client.patch("/products/987654321", json={"stock": 1}, headers=admin).status_code == 404


async def test_the_database_refuses_negative_stock(product):
    existing = product()
    with pytest.raises(asyncpg.CheckViolationError):
        await sql("UPDATE products SET stock = -1 WHERE id = $1", existing["id"])


def reserve(client, headers, product_id, quantity=1, order_id=None):
    body = {"order_id": str(order_id or uuid.uuid4()), "product_id": product_id, "quantity": quantity}
    return client.post("/internal/reservations", json=body, headers=headers)


def stock_of(client, product_id) -> int:
    return run_async(sql("SELECT stock FROM products WHERE id = $1", product_id))


def test_reservation_is_idempotent_per_order(client, caller, product):
    existing = product(stock=5, price="3.20")
    order_id = uuid.uuid4()
    first = reserve(client, caller, existing["id"], 2, order_id)
    assert first.status_code == 201
    assert first.json() == {
        "order_id": str(order_id),
        "product_id": existing["id"],
        "quantity": 2,
        "unit_price": "3.20",
        "status": "reserved",
    }
    again = reserve(client, caller, existing["id"], 2, order_id)
    assert again.status_code == 200 and again.json() == first.json()
    assert stock_of(client, existing["id"]) == 3
    different = reserve(client, caller, existing["id"], 1, order_id)
    assert different.status_code == 409
    assert stock_of(client, existing["id"]) == 3


def test_reservation_failures(client, caller, product):
    existing = product(stock=1)
    short = reserve(client, caller, existing["id"], 2)
    assert short.status_code == 409 and short.json() == {"detail": "insufficient stock"}
    assert reserve(client, caller, 987654321).status_code == 404
    assert reserve(client, {}, existing["id"]).status_code == 401
    for bad in ({"quantity": 0}, {"order_id": "not-a-uuid"}, {"product_id": 2**63}):
        body = {"order_id": str(uuid.uuid4()), "product_id": existing["id"], "quantity": 1} | bad
        assert client.post("/internal/reservations", json=body, headers=caller).status_code == 422
    assert stock_of(client, existing["id"]) == 1


def test_release_restores_stock_exactly_once(client, caller, product):
    existing = product(stock=4)
    order_id = uuid.uuid4()
    reserve(client, caller, existing["id"], 3, order_id)
    for _ in range(2):
        response = client.post(f"/internal/reservations/{order_id}/release", headers=caller)
        assert response.status_code == 200
        assert response.json() == {"order_id": str(order_id), "status": "released"}
        assert stock_of(client, existing["id"]) == 4
    # A released order stays released: reserving it again changes nothing.
    again = reserve(client, caller, existing["id"], 3, order_id)
    assert again.status_code == 200 and again.json()["status"] == "released"
    assert stock_of(client, existing["id"]) == 4
    assert client.post(f"/internal/reservations/{uuid.uuid4()}/release", headers=caller).status_code == 404
    assert client.post(f"/internal/reservations/{order_id}/release").status_code == 401


def test_stock_changes_invalidate_the_cached_product(client, caller, product, cache):
    existing = product(stock=6)
    order_id = uuid.uuid4()
    client.get(f"/products/{existing['id']}")
    assert cache.exists(cache_key(existing["id"]))
    reserve(client, caller, existing["id"], 2, order_id)
    assert not cache.exists(cache_key(existing["id"]))
    assert client.get(f"/products/{existing['id']}").json()["stock"] == 4
    client.post(f"/internal/reservations/{order_id}/release", headers=caller)
    assert not cache.exists(cache_key(existing["id"]))
    assert client.get(f"/products/{existing['id']}").json()["stock"] == 6


async def test_concurrent_reservations_never_oversell(inventory, caller, product):
    existing = product(stock=10)
    async with httpx.AsyncClient(base_url=inventory.url, timeout=30) as client:
        responses = await asyncio.gather(
            *(
                client.post(
                    "/internal/reservations",
                    json={"order_id": str(uuid.uuid4()), "product_id": existing["id"], "quantity": 1},
                    headers=caller,
                )
                for _ in range(50)
            )
        )
    codes = [r.status_code for r in responses]
    assert codes.count(201) == 10 and codes.count(409) == 40
    assert await sql("SELECT stock FROM products WHERE id = $1", existing["id"]) == 0
    assert await sql("SELECT count(*) FROM reservations WHERE product_id = $1", existing["id"]) == 10


async def test_concurrent_repeats_of_one_order_reserve_once_and_release_once(inventory, caller, product):
    existing = product(stock=10)
    order_id = str(uuid.uuid4())
    body = {"order_id": order_id, "product_id": existing["id"], "quantity": 2}
    async with httpx.AsyncClient(base_url=inventory.url, timeout=30, headers=caller) as client:
        reserves = await asyncio.gather(
            *(client.post("/internal/reservations", json=body) for _ in range(20))
        )
        assert sorted(r.status_code for r in reserves) == [200] * 19 + [201]
        assert len({r.text for r in reserves}) == 1
        assert await sql("SELECT stock FROM products WHERE id = $1", existing["id"]) == 8
        releases = await asyncio.gather(
            *(client.post(f"/internal/reservations/{order_id}/release") for _ in range(20))
        )
        assert {r.status_code for r in releases} == {200}
    assert await sql("SELECT stock FROM products WHERE id = $1", existing["id"]) == 10


def test_redis_down_reads_still_work_and_ready_names_redis(services, product, admin):
    existing = product(name="no-cache")
    instance = services.start_extra("inventory", env={"REDIS_URL": dead_redis_url()})
    try:
        with httpx.Client(base_url=instance.url, timeout=20) as client:
            for _ in range(3):
                read = client.get(f"/products/{existing['id']}")
                assert read.status_code == 200 and read.json() == existing
            patched = client.patch(f"/products/{existing['id']}", json={"stock": 3}, headers=admin)
            assert patched.status_code == 200 and patched.json()["stock"] == 3
            ready = client.get("/ready")
            assert ready.status_code == 503
            assert ready.json()["detail"] == "not ready: redis failing"
            assert ready.json()["checks"]["postgres"] == "ok"
            assert client.get("/health").status_code == 200
    finally:
        services.stop(instance)


def test_postgres_unreachable_ready_fails_health_stays_up(services, client, product):
    existing = product(name="cached-before-outage")
    client.get(f"/products/{existing['id']}")  # now in Redis
    instance = services.start_extra("inventory", env={"DATABASE_URL": dead_database_url()})
    try:
        with httpx.Client(base_url=instance.url, timeout=20) as dead_db:
            assert dead_db.get("/health").status_code == 200
            ready = dead_db.get("/ready")
            assert ready.status_code == 503
            assert ready.json()["detail"] == "not ready: postgres failing"
            assert ready.json()["checks"]["redis"] == "ok"
            # Cached products are still served; uncached ones fail cleanly, without a 500.
            assert dead_db.get(f"/products/{existing['id']}").json() == existing
            uncached = dead_db.get("/products/987654000")
            assert uncached.status_code == 503 and uncached.json() == {"detail": "dependency unavailable"}
    finally:
        services.stop(instance)


def test_reservations_are_not_under_a_public_prefix():
    public = catalogue.get("inventory").public_prefixes
    assert not any("/internal/reservations".startswith(prefix) for prefix in public)


def test_openapi_lists_the_public_and_internal_routes(client):
    assert client.get("/docs").status_code == 200
    paths = set(client.get("/openapi.json").json()["paths"])
    assert {
        "/products/",
        "/products/{product_id}",
        "/internal/reservations",
        "/internal/reservations/{order_id}/release",
    } <= paths
