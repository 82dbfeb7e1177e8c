"""The payments service over real HTTP (uvicorn subprocess, tokens from the real users service).

Payments are taken through the internal endpoint, as orders does: orders' service token, the customer's own
token in X-Acting-User. Customers read their payments; only an admin refunds on the public route."""

from __future__ import annotations

import asyncio
import uuid
from decimal import Decimal

import httpx
import pytest
from harness import auth, service_token

from payments_service.settings import PaymentsSettings

DECLINE_ABOVE = PaymentsSettings.model_fields[
    "payment_decline_above"
].default  # the harness keeps the default


@pytest.fixture(scope="module")
def payments(start_service):
    return start_service("payments")


@pytest.fixture(scope="module")
def client(payments):
    with httpx.Client(base_url=payments.url, timeout=20) as c:
        yield c


def as_orders(customer_token: str) -> dict[str, str]:
    return auth(service_token("payments")) | {"X-Acting-User": customer_token}


def charge(client, token, body, key=None):
    headers = as_orders(token) | {"Idempotency-Key": key or uuid.uuid4().hex}
    return client.post("/internal/payments", json=body, headers=headers)


def new_body(amount="25.00", currency="EUR") -> dict:
    return {"order_id": str(uuid.uuid4()), "amount": amount, "currency": currency}


def test_payment_is_authorized_and_shaped_like_the_contract(client, alice):
    body = new_body("25.5", "eur")
    response = charge(client, alice.token, body)
    assert response.status_code == 201
    payment = response.json()
    assert set(payment) == {"id", "order_id", "amount", "currency", "status", "decline_reason", "created_at"}
    assert payment["order_id"] == body["order_id"]
    assert (payment["amount"], payment["currency"]) == ("25.50", "EUR")
    assert (payment["status"], payment["decline_reason"]) == ("authorized", None)


def test_idempotency_key_is_required(client, alice):
    response = client.post("/internal/payments", json=new_body(), headers=as_orders(alice.token))
    assert response.status_code == 422
    assert response.json()["detail"][0]["loc"] == ["header", "Idempotency-Key"]


def test_same_key_and_same_body_returns_the_recorded_payment(client, alice):
    body, key = new_body("10"), uuid.uuid4().hex
    first = charge(client, alice.token, body, key)
    # 10, "10" and "10.00" are the same amount, "eur" the same currency: the same request.
    again = charge(client, alice.token, body | {"amount": 10.00, "currency": "eur"}, key)
    assert (first.status_code, again.status_code) == (201, 200)
    assert again.json() == first.json()


def test_same_key_with_a_different_body_is_422(client, alice):
    body, key = new_body("10.00"), uuid.uuid4().hex
    assert charge(client, alice.token, body, key).status_code == 201
    response = charge(client, alice.token, body | {"amount": "10.01"}, key)
    assert response.status_code == 422
    assert "different request body" in response.json()["detail"]


def test_keys_belong_to_their_caller(client, alice, bob):
    key = uuid.uuid4().hex
    mine = charge(client, alice.token, new_body(), key)
    theirs = charge(client, bob.token, new_body(), key)
    assert (mine.status_code, theirs.status_code) == (201, 201)
    assert mine.json()["id"] != theirs.json()["id"]


async def test_concurrent_requests_with_one_key_record_one_payment(payments, alice):
    body, key = new_body("42.00"), uuid.uuid4().hex
    headers = as_orders(alice.token) | {"Idempotency-Key": key}
    async with httpx.AsyncClient(base_url=payments.url, timeout=30) as client:
        responses = await asyncio.gather(
            *(client.post("/internal/payments", json=body, headers=headers) for _ in range(10))
        )
    outcome = sorted((r.status_code, r.text) for r in responses)
    assert sorted(r.status_code for r in responses) == [200] * 9 + [201], outcome
    assert len({r.json()["id"] for r in responses}) == 1


@pytest.mark.parametrize(
    ("amount", "status", "reason"),
    [
        (str(DECLINE_ABOVE), "authorized", None),
        (str(DECLINE_ABOVE + Decimal("0.01")), "declined", "amount exceeds limit"),
    ],
)
def test_the_simulated_provider_declines_above_the_limit(client, alice, amount, status, reason):
    response = charge(client, alice.token, new_body(amount))
    assert response.status_code == 201
    assert (response.json()["status"], response.json()["decline_reason"]) == (status, reason)


def test_an_order_gets_at_most_one_authorized_payment(client, alice, bob):
    body = new_body()
    assert charge(client, alice.token, body).json()["status"] == "authorized"
    for token in (alice.token, bob.token):  # another key, whoever asks
        response = charge(client, token, body)
        assert response.status_code == 409
        assert "already has an authorized payment" in response.json()["detail"]


def test_a_declined_order_can_still_be_paid_once(client, alice):
    body = new_body(str(DECLINE_ABOVE + 1))
    assert charge(client, alice.token, body).json()["status"] == "declined"
    assert charge(client, alice.token, body | {"amount": "5.00"}).json()["status"] == "authorized"


def test_only_the_owner_or_an_admin_sees_a_payment(client, alice, bob, admin_token):
    payment = charge(client, alice.token, new_body()).json()
    path = f"/payments/{payment['id']}"
    assert client.get(path, headers=auth(alice.token)).json() == payment
    assert client.get(path, headers=auth(admin_token)).json() == payment
    hidden = client.get(path, headers=auth(bob.token))
    assert (hidden.status_code, hidden.json()) == (404, {"detail": "payment not found"})
    assert client.get(f"/payments/{uuid.uuid4()}", headers=auth(alice.token)).status_code == 404
    anonymous = client.get(path)
    assert anonymous.status_code == 401
    assert anonymous.headers["www-authenticate"] == "Bearer"


def test_refund_is_idempotent_and_admin_or_orders_only(client, alice, bob, admin_token):
    payment = charge(client, alice.token, new_body()).json()
    path = f"/payments/{payment['id']}/refund"
    for customer in (alice, bob):  # not even the owner: customers cancel the order instead
        assert client.post(path, headers=auth(customer.token)).status_code == 403
    refunded = client.post(path, headers=auth(admin_token))
    assert refunded.status_code == 200
    assert refunded.json() == payment | {"status": "refunded"}
    internal = client.post(
        f"/internal/payments/{payment['id']}/refund", headers=auth(service_token("payments"))
    )
    assert internal.json() == payment | {"status": "refunded"}
    assert client.get(f"/payments/{payment['id']}", headers=auth(alice.token)).json()["status"] == "refunded"


def test_customers_list_their_own_payments_only(client, alice, bob, admin_token):
    mine = [charge(client, alice.token, new_body()).json() for _ in range(3)]
    listed = client.get("/payments/", params={"limit": 2}, headers=auth(alice.token))
    assert listed.status_code == 200
    assert [p["id"] for p in listed.json()] == [p["id"] for p in reversed(mine)][:2]  # newest first
    rest = client.get("/payments/", params={"limit": 2, "offset": 2}, headers=auth(alice.token)).json()
    assert mine[0]["id"] in [p["id"] for p in rest]
    theirs = client.get("/payments/", params={"limit": 100}, headers=auth(bob.token)).json()
    assert not {p["id"] for p in mine} & {p["id"] for p in theirs}
    one = client.get("/payments/", params={"order_id": mine[1]["order_id"]}, headers=auth(admin_token)).json()
    assert [p["id"] for p in one] == [mine[1]["id"]]


def test_refunding_a_declined_payment_is_409(client, alice, admin_token):
    payment = charge(client, alice.token, new_body(str(DECLINE_ABOVE * 2))).json()
    response = client.post(f"/payments/{payment['id']}/refund", headers=auth(admin_token))
    assert response.status_code == 409
    assert response.json() == {"detail": "a declined payment cannot be refunded: nothing was charged"}


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"amount": "0"}, "amount"),
        ({"amount": "-5"}, "amount"),
        ({"amount": "1.234"}, "amount"),
        ({"amount": "ten"}, "amount"),
        ({"currency": "EURO"}, "currency"),
        ({"currency": "E1R"}, "currency"),
        ({"order_id": "not-a-uuid"}, "order_id"),
        ({"extra": 1}, "extra"),
    ],
)
def test_bad_bodies_are_422_naming_the_field(client, alice, change, field):
    response = charge(client, alice.token, new_body() | change)
    assert response.status_code == 422
    assert response.json()["detail"][0]["loc"] == ["body", field]


def test_a_malformed_idempotency_key_is_422(client, alice):
    response = charge(client, alice.token, new_body(), key="x" * 201)
    assert response.status_code == 422
    assert response.json()["detail"][0]["loc"] == ["header", "Idempotency-Key"]
