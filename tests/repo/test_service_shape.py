"""The four services keep one shape (docs/architecture.md, "Services"): `core/` is the wiring (`lifespan.py`) and
the request dependencies (`deps.py`) only; `domain/` depends on its ports (`domain/ports.py`), never on the
service's infrastructure, core or api; routes never catch (domain errors are mapped once, by the kit)."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

SERVICES = Path(__file__).resolve().parents[2] / "services"
PACKAGES = {
    name: SERVICES / name / "src" / f"{name}_service" for name in ("users", "inventory", "orders", "payments")
}


def imported_modules(path: Path) -> set[str]:
    modules = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom) and node.module:
            modules.add(node.module)
        elif isinstance(node, ast.Import):
            modules.update(alias.name for alias in node.names)
    return modules


def layer_violations(package: str, domain_files: list[Path]) -> list[str]:
    """`file: module` for every import of the package's infrastructure, core or api from its domain."""
    banned = tuple(f"{package}.{layer}" for layer in ("infrastructure", "core", "api"))
    return [
        f"{path.name}: {module}"
        for path in domain_files
        for module in sorted(imported_modules(path))
        if module.startswith(banned)
    ]


@pytest.mark.parametrize("name", sorted(PACKAGES))
def test_core_holds_deps_and_lifespan_only(name):
    core = PACKAGES[name] / "core"
    assert sorted(p.name for p in core.glob("*.py")) == ["__init__.py", "deps.py", "lifespan.py"]


@pytest.mark.parametrize("name", sorted(PACKAGES))
def test_domain_depends_on_its_ports_not_on_infrastructure(name):
    domain = PACKAGES[name] / "domain"
    assert (domain / "ports.py").is_file()
    assert layer_violations(f"{name}_service", sorted(domain.glob("*.py"))) == []


@pytest.mark.parametrize("name", sorted(PACKAGES))
def test_routes_never_catch(name):
    for path in sorted((PACKAGES[name] / "api").glob("*.py")):
        assert not [n for n in ast.walk(ast.parse(path.read_text())) if isinstance(n, ast.Try)], path


def test_the_layer_check_catches_a_domain_module_importing_infrastructure(tmp_path):
    bad = tmp_path / "placement.py"
    bad.write_text(
        "from orders_service.infrastructure.clients import InventoryClient\nimport orders_service.core.deps\n"
    )
    assert layer_violations("orders_service", [bad]) == [
        "placement.py: orders_service.core.deps",
        "placement.py: orders_service.infrastructure.clients",
    ]
