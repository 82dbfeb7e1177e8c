"""Real rendered graphs, rendered once per session in-process (the render engine runs Pulumi's mock monitor on
its own event loop and restores the caller's, so nothing here needs an event-loop fixture)."""

from __future__ import annotations

import copy
from pathlib import Path

import pytest
from crossguard_driver import load_pack

from commerce_ops.render import render_environment, write_render


@pytest.fixture(scope="session")
def pack() -> dict:
    return load_pack()


@pytest.fixture(scope="session")
def _graphs() -> dict[str, dict]:
    return {}


@pytest.fixture(scope="session")
def rendered(_graphs):
    """rendered(env) -> the environment's graph (rendered on first use, then cached). Treat it as read-only."""

    def get(env: str) -> dict:
        if env not in _graphs:
            _graphs[env] = render_environment(env)
        return _graphs[env]

    return get


@pytest.fixture
def prod_graph(rendered) -> dict:
    """A deep copy of the real prod graph, free to mutate."""
    return copy.deepcopy(rendered("prod"))


@pytest.fixture(scope="session")
def prod_render_dir(rendered, tmp_path_factory) -> Path:
    """build/render/prod written to a temp dir (manifests/ + graph.json)."""
    return write_render(rendered("prod"), tmp_path_factory.mktemp("render") / "prod")
