"""Several orders' reservations and charges in one call (issue 17: fewer hops per order).

Over real HTTP: inventory's `POST /internal/reservations/batch` and payments' `POST /internal/payments/batch`
answer every item as its single endpoint would (status and body or detail), idempotent per order id, with partial
failures answered per item, and refuse bad input as a whole with a clear 4xx. In process: the kit's `Coalescer`,
which orders uses to send the calls of the orders in flight together.
"""

from __future__ import annotations

import asyncio
import json
import uuid

import asyncpg
import httpx
import pytest
from flow_support import create_product, fetch, order_body, start_all, stock_of
from harness import auth, database_url, service_token

from orders_service.infrastructure.clients import InventoryClient
from service_kit.batch import MAX_BATCH, Coalescer
from service_kit.http import create_http_client

pytestmark = pytest.mark.heavy(25)


@pytest.fixture(scope="module")
def inventory(start_service):
    return start_service("inventory")


@pytest.fixture(scope="module")
def payments(start_service):
    return start_service("payments")


@pytest.fixture(scope="module")
def stock(inventory, admin_token):
    def create(stock: int, price: str = "2.50") -> int:
        response = httpx.post(
            inventory.url + "/products/",
            json={"name": "batched", "price": price, "stock": stock},
            headers=auth(admin_token),
            timeout=30,
        )
        assert response.status_code == 201, response.text
        return response.json()["id"]

    return create


async def sql(service: str, query: str, *args):
    conn = await asyncpg.connect(database_url(service))
    try:
        return await conn.fetchval(query, *args)
    finally:
        await conn.close()


def reservation(product_id: int, quantity: int = 1, order_id: str | None = None) -> dict:
    return {"order_id": order_id or str(uuid.uuid4()), "product_id": product_id, "quantity": quantity}


def reserve_batch(inventory, items, headers=None) -> httpx.Response:
    headers = auth(service_token("inventory")) if headers is None else headers
    return httpx.post(
        inventory.url + "/internal/reservations/batch", json={"items": items}, headers=headers, timeout=30
    )


async def test_a_reservation_batch_answers_every_item_as_its_single_call_would(inventory, stock):
    product = stock(3)
    taken = reservation(product, 2)
    assert reserve_batch(inventory, [taken]).json()["items"][0]["status"] == 201
    other = reservation(product, 1)
    items = [
        other,  # new: 201
        taken,  # this order's existing reservation: 200
        reservation(product, 5),  # more than is left: 409
        reservation(987654321),  # no such product: 404
        {**taken, "quantity": 1},  # the order id reserved for another quantity: 409
    ]
    response = reserve_batch(inventory, items)
    assert response.status_code == 200, response.text
    answers = response.json()["items"]
    assert [a["status"] for a in answers] == [201, 200, 409, 404, 409]
    assert answers[0]["result"] == {**other, "unit_price": "2.50", "status": "reserved"}
    assert answers[1]["result"] == {**taken, "unit_price": "2.50", "status": "reserved"}
    assert answers[2] == {"status": 409, "result": None, "detail": "insufficient stock"}
    assert answers[3]["result"] is None and answers[3]["detail"] == "product not found"
    assert await sql("inventory", "SELECT stock FROM products WHERE id = $1", product) == 0

    # Repeated whole (a retried batch): nothing is taken twice, every reservation comes back as it was.
    again = reserve_batch(inventory, items[:2]).json()["items"]
    assert [a["status"] for a in again] == [200, 200]
    assert [a["result"] for a in again] == [answers[0]["result"], answers[1]["result"]]
    assert await sql("inventory", "SELECT stock FROM products WHERE id = $1", product) == 0


async def test_concurrent_reservation_batches_never_oversell(inventory, stock):
    product = stock(10)
    async with httpx.AsyncClient(base_url=inventory.url, timeout=30) as client:
        responses = await asyncio.gather(
            *(
                client.post(
                    "/internal/reservations/batch",
                    json={"items": [reservation(product) for _ in range(8)]},
                    headers=auth(service_token("inventory")),
                )
                for _ in range(5)
            )
        )
    codes = [a["status"] for r in responses for a in r.json()["items"]]
    assert codes.count(201) == 10 and codes.count(409) == 30
    assert await sql("inventory", "SELECT stock FROM products WHERE id = $1", product) == 0
    assert await sql("inventory", "SELECT count(*) FROM reservations WHERE product_id = $1", product) == 10


@pytest.mark.parametrize(
    "body",
    [
        {"items": []},
        {"items": [{"order_id": str(uuid.uuid4()), "product_id": 1, "quantity": 1}] * (MAX_BATCH + 1)},
        {"items": [{"order_id": "not-a-uuid", "product_id": 1, "quantity": 1}]},
        {"items": [{"order_id": str(uuid.uuid4()), "product_id": 1, "quantity": 0}]},
        {"items": [{"order_id": str(uuid.uuid4()), "product_id": 1, "quantity": 1}], "extra": 1},
        {"items": "nope"},
        {},
        [],
    ],
)
def test_a_bad_reservation_batch_is_422_and_reserves_nothing(inventory, body):
    response = httpx.post(
        inventory.url + "/internal/reservations/batch",
        json=body,
        headers=auth(service_token("inventory")),
        timeout=30,
    )
    assert response.status_code == 422, response.text
    assert "detail" in response.json()


def test_reservation_batches_are_for_services_only(inventory, stock, alice):
    items = [reservation(stock(5))]
    assert reserve_batch(inventory, items, headers={}).status_code == 401
    assert reserve_batch(inventory, items, headers=auth(alice.token)).status_code == 403
    assert reserve_batch(inventory, items, headers=auth(service_token("payments"))).status_code == 401
    not_json = httpx.post(
        inventory.url + "/internal/reservations/batch",
        content=b"{",
        headers=auth(service_token("inventory")) | {"Content-Type": "application/json"},
        timeout=30,
    )
    assert not_json.status_code == 422


def charge(token: str, amount: str = "12.00", order_id: str | None = None, key: str | None = None) -> dict:
    order_id = order_id or str(uuid.uuid4())
    return {
        "idempotency_key": key or order_id,
        "acting_user": token,
        "payment": {"order_id": order_id, "amount": amount, "currency": "EUR"},
    }


def charge_batch(payments, items, headers=None) -> httpx.Response:
    headers = auth(service_token("payments")) if headers is None else headers
    return httpx.post(
        payments.url + "/internal/payments/batch", json={"items": items}, headers=headers, timeout=30
    )


async def test_a_charge_batch_answers_every_item_as_its_single_call_would(payments, alice, bob):
    paid = charge(alice.token)
    first = charge_batch(payments, [paid]).json()["items"][0]
    assert first["status"] == 201 and first["result"]["status"] == "authorized"
    items = [
        charge(bob.token, "7.5"),  # new: 201
        paid,  # the same key and body again: 200, the same payment
        {**paid, "payment": {**paid["payment"], "amount": "13.00"}},  # the key with another body: 422
        charge(alice.token, order_id=paid["payment"]["order_id"], key="another-key"),  # already paid: 409
        charge("not-a-token"),  # the acting user's token refused: 403
        charge(alice.token, "99999.00"),  # declined by the provider: recorded, 201
    ]
    response = charge_batch(payments, items)
    assert response.status_code == 200, response.text
    answers = response.json()["items"]
    assert [a["status"] for a in answers] == [201, 200, 422, 409, 403, 201]
    assert answers[0]["result"]["amount"] == "7.50" and answers[0]["result"]["status"] == "authorized"
    assert answers[1]["result"] == first["result"]
    assert all(a["result"] is None and a["detail"] for a in answers[2:5])
    assert "X-Acting-User" in answers[4]["detail"]
    assert answers[5]["result"]["status"] == "declined"
    owner = await sql(
        "payments", "SELECT owner_id FROM payments WHERE id = $1", uuid.UUID(answers[0]["result"]["id"])
    )
    assert owner == str(bob.user["id"])  # charged for the item's own acting user
    order = uuid.UUID(paid["payment"]["order_id"])
    assert await sql("payments", "SELECT count(*) FROM payments WHERE order_id = $1", order) == 1

    # Repeated whole: every charge comes back as recorded, none is taken twice.
    again = charge_batch(payments, items[:2]).json()["items"]
    assert [a["status"] for a in again] == [200, 200]
    assert [a["result"] for a in again] == [answers[0]["result"], answers[1]["result"]]


@pytest.mark.parametrize(
    "change",
    [
        {"idempotency_key": ""},
        {"idempotency_key": "has space"},
        {"acting_user": ""},
        {"acting_user": "x" * 9000},
        {"payment": {"order_id": str(uuid.uuid4()), "amount": "0", "currency": "EUR"}},
        {"payment": {"order_id": str(uuid.uuid4()), "amount": "1.00", "currency": "EURO"}},
        {"extra": True},
    ],
)
def test_a_bad_charge_batch_is_422_and_charges_nothing(payments, alice, change):
    response = charge_batch(payments, [charge(alice.token), charge(alice.token) | change])
    assert response.status_code == 422, response.text
    assert alice.token not in response.text  # the token is not echoed back


def test_charge_batches_are_for_services_only(payments, alice):
    items = [charge(alice.token)]
    assert charge_batch(payments, items, headers={}).status_code == 401
    assert charge_batch(payments, items, headers=auth(alice.token)).status_code == 403
    assert charge_batch(payments, [], headers=auth(service_token("payments"))).status_code == 422


# --- the saga, with the orders in flight coalesced -----------------------------------------------------------
async def test_concurrent_orders_with_different_fates_each_get_their_own(
    services, admin_token, register_and_login
):
    """Orders in flight together share reservation and charge calls (when they meet in one tick): each still ends
    as it would alone, and a failure of one (no stock, no product, a decline) takes nothing from the others."""
    stack = start_all(services)
    buyer = register_and_login("mixed")
    scarce = create_product(stack, admin_token, price="4.00", stock=3)
    pricey = create_product(stack, admin_token, price="10000.01", stock=5)  # above the provider's limit
    bodies = [
        *(order_body(scarce["id"]) for _ in range(6)),
        *(order_body(2**40) for _ in range(3)),
        *(order_body(pricey["id"]) for _ in range(3)),
    ]
    async with httpx.AsyncClient(base_url=stack.orders.url, timeout=60) as client:
        responses = await asyncio.gather(
            *(client.post("/orders/", json=body, headers=auth(buyer.token)) for body in bodies)
        )
    assert {r.status_code for r in responses} == {201}
    fates = [(r.json()["status"], r.json()["failure_reason"]) for r in responses]
    assert sorted(fates[:6]) == [("completed", None)] * 3 + [("failed", "insufficient stock")] * 3
    assert fates[6:9] == [("failed", "product not found")] * 3
    assert fates[9:] == [("failed", "payment declined: amount exceeds limit")] * 3
    assert (stock_of(stack, scarce["id"]), stock_of(stack, pricey["id"])) == (0, 5)
    completed = [uuid.UUID(r.json()["order_id"]) for r in responses[:6] if r.json()["status"] == "completed"]
    authorized = await fetch(
        "payments",
        "SELECT order_id FROM payments WHERE status = 'authorized' AND order_id = ANY($1)",
        completed,
    )
    assert sorted(r["order_id"] for r in authorized) == sorted(completed)


# --- the Coalescer (in process) -----------------------------------------------------------------------------
class Calls:
    def __init__(self, fail_batch: bool = False) -> None:
        self.single: list[int] = []
        self.many: list[list[int]] = []
        self.fail_batch = fail_batch

    async def one(self, item: int) -> int:
        self.single.append(item)
        await asyncio.sleep(0)
        return item * 10

    async def batch(self, items: list[int]) -> list[int | BaseException]:
        self.many.append(items)
        await asyncio.sleep(0)
        if self.fail_batch:
            raise ConnectionError("batch lost")
        return [ValueError(f"odd {i}") if i % 2 else i * 10 for i in items]


async def test_calls_made_in_one_tick_go_as_one_batch_each_with_its_own_answer():
    calls = Calls()
    coalescer = Coalescer(calls.one, calls.batch, max_size=8)
    results = await asyncio.gather(*(coalescer.submit(i) for i in range(4)), return_exceptions=True)
    assert calls.many == [[0, 1, 2, 3]] and calls.single == []
    assert results[0] == 0 and results[2] == 20
    assert isinstance(results[1], ValueError) and str(results[3]) == "odd 3"


async def test_a_lone_call_goes_as_a_single_call_and_batches_are_bounded():
    calls = Calls()
    coalescer = Coalescer(calls.one, calls.batch, max_size=3)
    assert await coalescer.submit(7) == 70
    assert calls.single == [7] and calls.many == []
    await asyncio.gather(*(coalescer.submit(i * 2) for i in range(7)))
    assert [len(b) for b in calls.many] == [3, 3] and calls.single == [7, 12]


async def test_a_failed_batch_fails_each_of_its_calls_alike():
    calls = Calls(fail_batch=True)
    coalescer = Coalescer(calls.one, calls.batch, max_size=8, window=0.001)
    results = await asyncio.gather(*(coalescer.submit(i) for i in range(3)), return_exceptions=True)
    assert calls.many == [[0, 1, 2]]
    assert all(isinstance(r, ConnectionError) for r in results)


async def test_a_cancelled_caller_leaves_the_batch_to_the_others():
    calls = Calls()
    coalescer = Coalescer(calls.one, calls.batch, max_size=8)
    first = asyncio.ensure_future(coalescer.submit(2))
    second = asyncio.ensure_future(coalescer.submit(4))
    await asyncio.sleep(0)
    first.cancel()
    assert await second == 40
    assert calls.many == [[2, 4]]


async def test_size_one_never_batches():
    calls = Calls()
    coalescer = Coalescer(calls.one, calls.batch, max_size=1)
    assert await asyncio.gather(*(coalescer.submit(i) for i in range(3))) == [0, 10, 20]
    assert calls.many == [] and calls.single == [0, 1, 2]
    with pytest.raises(ValueError):
        Coalescer(calls.one, calls.batch, max_size=MAX_BATCH + 1)


# --- orders' client: a target without the batch route, an item answered 503 -----------------------------------
class FakeInventory:
    """A loopback inventory: the single reservation route (503 for product 503, once per order), and the batch
    route only when `batch` (else 404, as a version without it); it counts what reached it."""

    def __init__(self, batch: bool) -> None:
        self.batch = batch
        self.hits: list[str] = []
        self.unavailable: set[str] = set()

    def reservation(self, item: dict) -> tuple[int, dict]:
        if item["product_id"] == 503 and item["order_id"] not in self.unavailable:
            self.unavailable.add(item["order_id"])
            return 503, {"detail": "dependency unavailable"}
        return 201, {**item, "unit_price": "2.00", "status": "reserved"}

    async def handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        while True:
            try:
                head = await reader.readuntil(b"\r\n\r\n")
            except asyncio.IncompleteReadError:
                return
            lines = head.decode("latin-1").split("\r\n")
            path = lines[0].split(" ")[1]
            length = next(
                int(v)
                for k, _, v in (line.partition(": ") for line in lines)
                if k.lower() == "content-length"
            )
            body = json.loads(await reader.readexactly(length))
            self.hits.append(path)
            if path == "/internal/reservations":
                status, answer = self.reservation(body)
            elif path == "/internal/reservations/batch" and self.batch:
                answers = [self.reservation(item) for item in body["items"]]
                status = 200
                answer = {
                    "items": [
                        {"status": s, "result": a if s == 201 else None, "detail": a.get("detail")}
                        for s, a in answers
                    ]
                }
            else:
                status, answer = 404, {"detail": "Not Found"}
            payload = json.dumps(answer).encode()
            writer.write(
                f"HTTP/1.1 {status} X\r\nContent-Type: application/json\r\nContent-Length: {len(payload)}\r\n\r\n".encode()
                + payload
            )
            await writer.drain()


@pytest.mark.parametrize("batch", [True, False], ids=["with the batch route", "without it"])
async def test_orders_client_coalesces_and_falls_back_to_single_calls(batch):
    fake = FakeInventory(batch)
    listener = await asyncio.start_server(fake.handle, "127.0.0.1", 0)
    url = f"http://127.0.0.1:{listener.sockets[0].getsockname()[1]}"
    http = create_http_client(timeout_seconds=5)
    client = InventoryClient("inventory", http, url, timeout=5, retries=2, batch_size=8)
    try:
        orders = [(uuid.uuid4(), 503 if n == 1 else 7) for n in range(4)]
        reservations = await asyncio.gather(*(client.reserve(order, product, 1) for order, product in orders))
    finally:
        await http.aclose()
        listener.close()
    # Every order gets its reservation: the one answered 503 inside the batch went again alone and got it.
    assert [r.status for r in reservations] == ["reserved"] * 4
    if batch:
        assert fake.hits == ["/internal/reservations/batch", "/internal/reservations"]
    else:  # one batch refused with 404, then each call alone (the 503 retried by the single call)
        assert fake.hits[0] == "/internal/reservations/batch"
        assert sorted(fake.hits[1:]) == ["/internal/reservations"] * 5
