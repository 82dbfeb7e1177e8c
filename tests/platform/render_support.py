"""Shared helpers of the platform tests: one render per environment per session, and manifest lookups.

A module with its own name (not conftest) so `from render_support import ...` is unambiguous when several test
directories run in one pytest process; tests/policy puts this folder on sys.path and reads the same renders.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from commerce_ops.render import render_environment

REPO_ROOT = Path(__file__).resolve().parents[2]
ENVIRONMENTS = ("dev", "prod", "pr-42")
_RENDERS: dict[str, dict] = {}


def shared(env: str) -> dict:
    """The session's render of `env` itself, rendered on first use: read-only (tests/policy reads it too)."""
    if env not in _RENDERS:
        _RENDERS[env] = render_environment(env, REPO_ROOT)
    return _RENDERS[env]


def fresh(value: Any) -> Any:
    """A deep copy of JSON-shaped data (dicts, lists, scalars; anything else through copy.deepcopy): what
    copy.deepcopy gives for a graph, its props or a stack, at a quarter of the CPU (the tests copy them thousands
    of times: one copy per test, and one per policy per resource where CrossGuard hands each policy its own)."""
    kind = type(value)
    if kind is dict:
        return {k: fresh(v) for k, v in value.items()}
    if kind is list:
        return [fresh(v) for v in value]
    if kind in (str, int, float, bool) or value is None:
        return value
    import copy

    return copy.deepcopy(value)


def rendered(env: str) -> dict:
    """The session's render of `env` (a deep copy, so tests cannot disturb each other)."""
    return fresh(shared(env))


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
