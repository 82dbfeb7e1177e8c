"""Orders' waits are settings (so tests can run them fast) with bounds: a bad value stops start-up with one line."""

from __future__ import annotations

import pytest

from orders_service.settings import OrdersSettings
from service_kit.app import ConfigurationError, load_settings

REQUIRED = {
    "DATABASE_URL": "postgresql://orders@localhost/orders",
    "SERVICE_TOKEN_URL": "http://users/internal/token",
    "SERVICE_CLIENT_SECRET": "s" * 32,
    "USERS_URL": "http://users",
    "INVENTORY_URL": "http://inventory",
    "PAYMENTS_URL": "http://payments",
}


@pytest.fixture
def env(monkeypatch):
    for name in OrdersSettings.model_fields:
        monkeypatch.delenv(name.upper(), raising=False)
    for name, value in REQUIRED.items():
        monkeypatch.setenv(name, value)
    return monkeypatch


def test_the_defaults_are_the_waits_orders_always_had(env):
    settings = load_settings(OrdersSettings)
    assert settings.order_late_charge_grace_seconds == 10.0
    assert settings.compensation_retry_delays() == (0.2, 0.5, 1, *[2] * 30)


def test_small_waits_shorten_every_retry(env):
    env.setenv("ORDER_COMPENSATION_RETRY_SECONDS", "0.1")
    env.setenv("ORDER_COMPENSATION_RETRIES", "5")
    assert load_settings(OrdersSettings).compensation_retry_delays() == (0.1,) * 5


@pytest.mark.parametrize(
    ("name", "value", "problem"),
    [
        ("ORDER_LATE_CHARGE_GRACE_SECONDS", "0", "Input should be greater than 0"),
        ("ORDER_COMPENSATION_RETRY_SECONDS", "-1", "Input should be greater than 0"),
        ("ORDER_COMPENSATION_RETRIES", "0", "Input should be greater than or equal to 1"),
        ("ORDER_SWEEP_INTERVAL_SECONDS", "soon", "Input should be a valid number"),
    ],
)
def test_a_wait_out_of_range_is_a_one_line_error_naming_it(env, name, value, problem):
    env.setenv(name, value)
    with pytest.raises(ConfigurationError) as failure:
        load_settings(OrdersSettings)
    message = str(failure.value)
    assert message.startswith(f"OrdersSettings: invalid environment: {name}: {problem}")
    assert "\n" not in message
