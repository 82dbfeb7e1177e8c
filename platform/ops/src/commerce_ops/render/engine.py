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
import importlib
import json
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import pulumi
import pulumi._types as pulumi_types
from pulumi.runtime import mocks, rpc, set_all_config
from pulumi.runtime import settings as pulumi_settings
from pulumi.runtime.proto import resource_pb2
from pulumi.runtime.stack import run_pulumi_func
from pulumi.runtime.sync_await import _sync_await

# The SDK re-resolves the type hints of every input/output class on every (de)serialisation; they are fixed
# per class, and resolving them is most of a render's time. Cache it (same results, read-only dicts).
if not hasattr(pulumi_types._types_from_py_properties, "cache_info"):
    pulumi_types._types_from_py_properties = functools.cache(pulumi_types._types_from_py_properties)


# pulumi_kubernetes loads its modules lazily on first attribute access, so without this the first render would
# pay ~1 s of imports. Load, at import time, the ones the components use (args, outputs and resource classes).
SDK_MODULES = {
    "core.v1": (
        "Namespace",
        "ResourceQuota",
        "LimitRange",
        "ServiceAccount",
        "Secret",
        "ConfigMap",
        "Service",
    ),
    "apps.v1": ("Deployment", "StatefulSet"),
    "batch.v1": ("Job",),
    "networking.v1": ("NetworkPolicy", "Ingress"),
    "autoscaling.v2": ("HorizontalPodAutoscaler",),
    "policy.v1": ("PodDisruptionBudget",),
    "helm.v3": ("Release",),
    "meta.v1": (),
}


def load_sdk_modules() -> None:
    for module, classes in SDK_MODULES.items():
        for part in ("_inputs", "outputs"):
            vars(importlib.import_module(f"pulumi_kubernetes.{module}.{part}"))
        package = importlib.import_module(f"pulumi_kubernetes.{module}")
        for name in classes:
            getattr(package, name)
    vars(importlib.import_module("pulumi_kubernetes.provider"))


load_sdk_modules()


class _TaskSet:
    """Drop-in for the SDK's deque of outstanding outputs with O(1) remove (a deque makes a render quadratic in
    the number of outputs: every resolved Output removes itself by linear search)."""

    def __init__(self) -> None:
        self._tasks: dict[Any, None] = {}

    def append(self, task: Any) -> None:
        self._tasks[task] = None

    def remove(self, task: Any) -> None:
        try:
            del self._tasks[task]
        except KeyError:
            raise ValueError(task) from None

    def popleft(self) -> Any:
        task = next(iter(self._tasks))
        del self._tasks[task]
        return task

    def __len__(self) -> int:
        return len(self._tasks)


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

    def new_resource(self, args: mocks.MockResourceArgs) -> tuple[str, dict]:
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
    def __init__(self, run: Run):
        super().__init__(EchoMocks())
        self.run = run

    def RegisterResource(self, request):  # noqa: N802 - the gRPC method name
        urn = self.make_urn(request.parent, request.type, request.name)
        inputs = {} if request.type == "pulumi:pulumi:Stack" else rpc.deserialize_properties(request.object)
        self.run.resources[urn] = Registration(
            urn=urn,
            type=request.type,
            name=request.name,
            parent=request.parent,
            dependencies=sorted(set(request.dependencies)),
            provider=request.provider.split("::")[-2] if request.provider else "",
            custom=bool(request.custom),
            inputs=inputs,
            options=resource_options(request),
        )
        if request.type == "pulumi:pulumi:Stack":
            return resource_pb2.RegisterResourceResponse(urn=urn)
        resource_id, state = self.mocks.new_resource(
            mocks.MockResourceArgs(
                typ=request.type,
                name=request.name,
                inputs=inputs,
                provider=request.provider,
                resource_id=request.importId,
                custom=request.custom or False,
            )
        )
        self.resources[urn] = mocks.MockMonitor.ResourceRegistration(urn, resource_id, state)
        props = _sync_await(rpc.serialize_properties(state, {}))
        return resource_pb2.RegisterResourceResponse(urn=urn, id=resource_id, object=props)


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
        set_all_config(config, sorted(secret_keys))
        mocks.set_mocks(
            EchoMocks(), project=project, stack=stack, preview=False, monitor=RecordingMonitor(run)
        )
        pulumi_settings.SETTINGS.outputs = _TaskSet()  # after set_mocks (see _TaskSet)
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
