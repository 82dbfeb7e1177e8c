"""Run the Pulumi program under the mock monitor and record what it declares.

The mock monitor stands in for the Pulumi engine only: it answers each registration with the inputs as outputs
(as a provider would echo a created object) and remembers parent, dependencies and provider of every resource.
Each run gets a fresh contextvars context and event loop, so runs are isolated and repeatable in one process.
"""

from __future__ import annotations

import asyncio
import contextvars
import functools
import hashlib
import json
import threading
from collections import deque
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

import pulumi
import pulumi._types as pulumi_types
import pulumi.runtime.resource as pulumi_resource
from pulumi._version import _VERSION as PULUMI_SDK_VERSION
from pulumi.runtime import mocks, set_all_config
from pulumi.runtime import settings as pulumi_settings
from pulumi.runtime.proto import source_pb2
from pulumi.runtime.stack import run_pulumi_func

# --- SDK speed-ups ------------------------------------------------------------------------------------------------
# Kept: only what measured faster, side by side in one process (BENCHMARKS.md, "Developer loop"). Tried and dropped:
# an O(1)-remove set for the SDK's deque of outstanding outputs (+28 ms CPU per dev render: the deque stays short),
# running the mock monitor's calls inline instead of on the loop's thread pool (+160 ms: the SDK's _sync_await then
# pumps the loop re-entrantly), and importing the pulumi_kubernetes modules at import time (no gain for one render; the
# components no longer use them: components/kube.py).

# The SDK version the patches were written and measured on (platform/pyproject.toml pins it); on any other the render
# stops with one line rather than patch an SDK whose internals may have moved.
SDK_VERSION = "3.223.0"


class SdkVersionError(RuntimeError):
    """The installed Pulumi SDK is not the one the render's SDK patches were measured on (one line)."""


# The SDK re-resolves the type hints of every input/output class on every (de)serialisation; they are fixed per
# class, and resolving them was most of a render's time (-0.8 s CPU per dev render). Cached: same results,
# read-only dicts; one cache for every render in the process.
_cached_types_from_py_properties = functools.cache(pulumi_types._types_from_py_properties)


# Every registration sends the engine the program's stack (traceback.extract_stack, reading each frame's source
# line), for its error messages. The mock monitor ignores it: an empty trace, as the SDK sends when it finds none.
def _no_stack_trace() -> source_pb2.StackTrace:
    return source_pb2.StackTrace()


@contextmanager
def sdk_speedups() -> Iterator[None]:
    """The SDK patches, applied for one render and undone after it: nothing outside a render runs with them."""
    if PULUMI_SDK_VERSION != SDK_VERSION:
        raise SdkVersionError(
            f"the render's SDK patches (commerce_ops/render/engine.py) are measured on pulumi {SDK_VERSION}, "
            f"not {PULUMI_SDK_VERSION}: measure them on it and set SDK_VERSION"
        )
    previous = pulumi_types._types_from_py_properties, pulumi_resource._get_stack_trace
    pulumi_types._types_from_py_properties = _cached_types_from_py_properties
    pulumi_resource._get_stack_trace = _no_stack_trace
    try:
        yield
    finally:
        pulumi_types._types_from_py_properties, pulumi_resource._get_stack_trace = previous


@dataclass
class Registration:
    urn: str
    type: str
    name: str
    parent: str
    dependencies: list[str]
    provider: str
    custom: bool
    inputs: dict[str, Any]
    options: dict[str, Any] = field(default_factory=dict)


def resource_options(request) -> dict[str, Any]:
    """The lifecycle options a registration asked for (only those set): what `pulumi up` will do on delete and
    replace, recorded in graph.json so `ops diff` and the policy rules see them."""
    options: dict[str, Any] = {}
    if request.protect:
        options["protect"] = True
    if request.retainOnDelete:
        options["retainOnDelete"] = True
    if request.deleteBeforeReplaceDefined and request.deleteBeforeReplace:
        options["deleteBeforeReplace"] = True
    if request.ignoreChanges:
        options["ignoreChanges"] = sorted(request.ignoreChanges)
    timeouts = request.customTimeouts
    if timeouts.create or timeouts.update or timeouts.delete:
        options["customTimeouts"] = {
            k: v
            for k, v in (
                ("create", timeouts.create),
                ("update", timeouts.update),
                ("delete", timeouts.delete),
            )
            if v
        }
    return options


@dataclass
class Run:
    resources: dict[str, Registration] = field(default_factory=dict)
    outputs: dict[str, Any] = field(default_factory=dict)
    secret_outputs: set[str] = field(default_factory=set)


def _stable_json(value: Any) -> str:
    return json.dumps(value, sort_keys=True, default=str)


class EchoMocks(pulumi.runtime.Mocks):
    """Outputs = inputs, plus what the real provider would fill in that the program reads back."""

    def __init__(self) -> None:
        self._recording = threading.local()  # the Registration being made on this thread, if any

    @contextmanager
    def recording(self, registration: Registration) -> Iterator[None]:
        """`new_resource` calls on this thread meanwhile record their inputs in `registration`."""
        self._recording.registration = registration
        try:
            yield
        finally:
            self._recording.registration = None

    def new_resource(self, args: mocks.MockResourceArgs) -> tuple[str, dict]:
        registration = getattr(self._recording, "registration", None)
        if registration is not None:
            registration.inputs = args.inputs  # deserialised once, by the SDK's RegisterResource
        outputs = dict(args.inputs)
        if args.typ == "docker:index/image:Image":
            # The registry answers a push with the content digest; here, a digest of the build inputs.
            repository = str(outputs["imageName"]).rsplit(":", 1)[0]
            digest = hashlib.sha256(_stable_json(args.inputs).encode()).hexdigest()
            outputs["repoDigest"] = f"{repository}@sha256:{digest}"
        metadata = outputs.get("metadata")
        resource_id = args.name
        if isinstance(metadata, dict) and metadata.get("name"):
            resource_id = "/".join(str(p) for p in (metadata.get("namespace"), metadata["name"]) if p)
        return resource_id, outputs

    def call(self, args: mocks.MockCallArgs) -> tuple[dict, list | None]:
        return {}, None


class RecordingMonitor(mocks.MockMonitor):
    """The SDK's mock monitor, which also records each registration's parent, dependencies, provider and options
    (its inputs come from the mocks' `new_resource`, which the SDK's RegisterResource calls on the same thread)."""

    def __init__(self, run: Run):
        self.echo = EchoMocks()
        super().__init__(self.echo)
        self.run = run

    def RegisterResource(self, request):  # noqa: N802 - the gRPC method name
        urn = self.make_urn(request.parent, request.type, request.name)
        registration = Registration(
            urn=urn,
            type=request.type,
            name=request.name,
            parent=request.parent,
            dependencies=sorted(set(request.dependencies)),
            provider=request.provider.split("::")[-2] if request.provider else "",
            custom=bool(request.custom),
            inputs={},
            options=resource_options(request),
        )
        self.run.resources[urn] = registration
        with self.echo.recording(registration):
            return super().RegisterResource(request)


def run_program(
    program: Callable[[], dict[str, pulumi.Output[Any]]],
    *,
    project: str,
    stack: str,
    config: dict[str, str],
    secret_keys: set[str],
) -> Run:
    """Run `program` as stack `stack` of `project` with the given config; return what it registered."""
    return contextvars.Context().run(_run_isolated, program, project, stack, config, secret_keys)


def _run_isolated(program, project: str, stack: str, config: dict[str, str], secret_keys: set[str]) -> Run:
    run = Run()
    try:
        previous = asyncio.get_event_loop_policy().get_event_loop()
    except RuntimeError:  # no loop in this thread
        previous = None
    loop = asyncio.new_event_loop()
    asyncio.set_event_loop(loop)
    try:
        with sdk_speedups():
            set_all_config(config, sorted(secret_keys))
            monitor = RecordingMonitor(run)
            mocks.set_mocks(monitor.echo, project=project, stack=stack, preview=False, monitor=monitor)
            # The mock settings leave these unset, and this run's context is fresh.
            pulumi_settings.SETTINGS.outputs = deque()
            pulumi_settings.SETTINGS.lock = threading.Lock()
            returned: dict[str, pulumi.Output[Any]] = {}

            def body() -> None:
                returned.update(program())

            loop.run_until_complete(run_pulumi_func(body))
            for key, output in returned.items():
                run.outputs[key] = loop.run_until_complete(output.future())
                if loop.run_until_complete(output.is_secret()):
                    run.secret_outputs.add(key)
        return run
    finally:
        loop.close()
        asyncio.set_event_loop(previous)
