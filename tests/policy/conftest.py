"""Real rendered graphs, rendered once per session in-process (the render engine runs Pulumi's mock monitor on
its own event loop and restores the caller's, so nothing here needs an event-loop fixture)."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from commerce_ops.render import write_render

# The platform tests' renders (one per environment per session), so an environment both suites read is rendered
# once in the process that runs them together; and their `fresh` copy (crossguard_driver, policy_objects).
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "platform"))
from crossguard_driver import load_pack  # noqa: E402
from render_support import fresh, shared  # noqa: E402


@pytest.fixture(scope="session")
def pack() -> dict:
    return load_pack()


@pytest.fixture(scope="session")
def rendered():
    """rendered(env) -> the environment's graph (rendered on first use, then cached). Treat it as read-only."""
    return shared


@pytest.fixture
def prod_graph(rendered) -> dict:
    """A deep copy of the real prod graph, free to mutate."""
    return fresh(rendered("prod"))


@pytest.fixture(scope="session")
def prod_render_dir(rendered, tmp_path_factory) -> Path:
    """build/render/prod written to a temp dir (manifests/ + graph.json)."""
    return write_render(rendered("prod"), tmp_path_factory.mktemp("render") / "prod")
