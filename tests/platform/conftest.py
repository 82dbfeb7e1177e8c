"""Platform tests: the Pulumi program under the mock monitor (marked `platform`, run in their own pytest process).

Each render runs in its own contextvars context with its own event loop (commerce_platform.render.engine), and
the autouse fixture below puts back whatever loop the test started with, so Pulumi's loop handling never leaks
into another test. Renders are expensive enough to share: one per environment per session.
"""

from __future__ import annotations

import asyncio
import copy
import shutil
from pathlib import Path

import pytest
from commerce_platform.render import render_environment

REPO_ROOT = Path(__file__).resolve().parents[2]
ENVIRONMENTS = ("dev", "prod", "pr-42")


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


_RENDERS: dict[str, dict] = {}


def rendered(env: str) -> dict:
    """The session's render of `env` (a deep copy, so tests cannot disturb each other)."""
    if env not in _RENDERS:
        _RENDERS[env] = render_environment(env, REPO_ROOT)
    return copy.deepcopy(_RENDERS[env])


@pytest.fixture(params=ENVIRONMENTS)
def graph(request) -> dict:
    return rendered(request.param)


def objects(graph: dict, kind: str | None = None) -> list[dict]:
    return [m["object"] for m in graph["manifests"] if kind is None or m["object"]["kind"] == kind]


def by_name(graph: dict, kind: str) -> dict[str, dict]:
    return {o["metadata"]["name"]: o for o in objects(graph, kind)}


def pod_specs(graph: dict) -> list[tuple[str, dict]]:
    """(object name, pod spec) of every workload: Deployments, StatefulSets, Jobs."""
    return [
        (f"{o['kind']}/{o['metadata']['name']}", o["spec"]["template"]["spec"])
        for o in objects(graph)
        if o["kind"] in ("Deployment", "StatefulSet", "Job")
    ]


@pytest.fixture
def repo_copy(tmp_path: Path) -> Path:
    """A scratch copy of the inputs a render reads (environments/ and Pulumi.*.yaml), to break on purpose."""
    shutil.copytree(REPO_ROOT / "environments", tmp_path / "environments")
    for stack_file in REPO_ROOT.glob("Pulumi*.yaml"):
        shutil.copy(stack_file, tmp_path / stack_file.name)
    return tmp_path
