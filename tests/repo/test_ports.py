"""Each domain port (a Protocol in `<service>/domain/ports.py`) and the adapter core/lifespan.py wires in for it
have the same methods with the same parameters: a rename on one side alone fails here, not at the first call."""

from __future__ import annotations

import importlib
import inspect

import pytest

# port → adapter, as each service's core/lifespan.py wires them.
WIRING = {
    "users_service.domain.ports:UserStore": "users_service.infrastructure.repository:UserRepository",
    "users_service.domain.ports:Hasher": "users_service.infrastructure.security:PasswordHasher",
    "users_service.domain.ports:Issuer": "users_service.infrastructure.security:TokenIssuer",
    "users_service.domain.ports:Throttle": "users_service.infrastructure.throttle:LoginThrottle",
    "inventory_service.domain.ports:InventoryStore": "inventory_service.infrastructure.repository:InventoryRepository",
    "inventory_service.domain.ports:ProductCache": "service_kit.cache:JsonCache",
    "orders_service.domain.ports:OrderStore": "orders_service.infrastructure.repository:OrdersRepository",
    "orders_service.domain.ports:InventoryApi": "orders_service.infrastructure.clients:InventoryClient",
    "orders_service.domain.ports:PaymentsApi": "orders_service.infrastructure.clients:PaymentsClient",
    "payments_service.domain.ports:PaymentStore": "payments_service.infrastructure.repository:PaymentRepository",
    "payments_service.domain.ports:PaymentProvider": "payments_service.infrastructure.provider:SimulatedProvider",
}


def _load(path: str) -> type:
    module, name = path.split(":")
    return getattr(importlib.import_module(module), name)


def _shape(function) -> tuple[int, list[str]]:
    """How many positional parameters (self included) and the names of the keyword-only ones: what a caller
    relies on (positional names may differ: `get(order_id)` in a port, `get(record_id)` in the kit's base)."""
    parameters = inspect.signature(function).parameters.values()
    positional = [p for p in parameters if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD)]
    return len(positional), sorted(p.name for p in parameters if p.kind is p.KEYWORD_ONLY)


def _members(cls: type) -> dict[str, object]:
    """The public methods and properties a port declares."""
    return {
        name: member
        for name, member in vars(cls).items()
        if not name.startswith("_") and (callable(member) or isinstance(member, property))
    }


@pytest.mark.parametrize("port", sorted(WIRING))
def test_the_adapter_has_every_method_of_its_port(port):
    adapter = _load(WIRING[port])
    for name, member in _members(_load(port)).items():
        assert hasattr(adapter, name), f"{WIRING[port]} has no {name} ({port})"
        if isinstance(member, property):
            continue
        implemented = getattr(adapter, name)
        assert callable(implemented), f"{WIRING[port]}.{name} is not a method ({port} calls it)"
        assert _shape(implemented) == _shape(member), f"{WIRING[port]}.{name}: parameters differ from {port}"


def test_every_port_is_wired():
    declared = set()
    for service in ("users", "inventory", "orders", "payments"):
        module = importlib.import_module(f"{service}_service.domain.ports")
        declared |= {
            f"{module.__name__}:{name}"
            for name, value in vars(module).items()
            if inspect.isclass(value)
            and value.__module__ == module.__name__
            and getattr(value, "_is_protocol", False)
        }
    assert declared == set(WIRING)
