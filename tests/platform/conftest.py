"""Platform tests: the Pulumi program under the mock monitor (marked `platform`, run in their own pytest process).

Each render runs in its own contextvars context with its own event loop (commerce_ops.render.engine), and
the autouse fixture below puts back whatever loop the test started with, so Pulumi's loop handling never leaks
into another test. Renders are shared: one per environment per session (render_support.rendered).
"""

from __future__ import annotations

import asyncio
import shutil
from pathlib import Path

import pytest
from render_support import ENVIRONMENTS, REPO_ROOT, rendered


def pytest_collection_modifyitems(items):
    here = Path(__file__).parent
    for item in items:
        if here in Path(item.fspath).parents:
            item.add_marker(pytest.mark.platform)


@pytest.fixture(autouse=True)
def _restore_event_loop():
    try:
        loop = asyncio.get_event_loop_policy().get_event_loop()
    except RuntimeError:
        loop = None
    yield
    asyncio.set_event_loop(loop)


@pytest.fixture(params=ENVIRONMENTS)
def graph(request) -> dict:
    return rendered(request.param)


@pytest.fixture
def repo_copy(tmp_path: Path) -> Path:
    """A scratch copy of the inputs a render reads (environments/ and Pulumi.*.yaml), to break on purpose."""
    shutil.copytree(REPO_ROOT / "environments", tmp_path / "environments")
    for stack_file in REPO_ROOT.glob("Pulumi*.yaml"):
        shutil.copy(stack_file, tmp_path / stack_file.name)
    return tmp_path
