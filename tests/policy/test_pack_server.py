"""The pack run as `__main__` (as the Pulumi CLI runs it) serves the Analyzer gRPC protocol: we talk to it the
way the engine does — GetAnalyzerInfo, Analyze per resource, AnalyzeStack — with the real rendered prod graph."""

from __future__ import annotations

import copy
import subprocess
import sys

import grpc
import pytest
from crossguard_driver import PACK_DIR
from google.protobuf import empty_pb2, json_format, struct_pb2
from policy_objects import find, first_container, remove
from pulumi.runtime.proto import analyzer_pb2, analyzer_pb2_grpc

from commerce_platform.policy import RULES, Enforcement


@pytest.fixture(scope="module")
def analyzer():
    """The pack process (started once for the module) and a stub connected to the port it prints."""
    process = subprocess.Popen(
        [sys.executable, "-u", str(PACK_DIR / "__main__.py")],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        port = process.stdout.readline().strip()
        assert port.isdigit(), process.stderr.read() if process.poll() is not None else port
        channel = grpc.insecure_channel(f"127.0.0.1:{port}")
        grpc.channel_ready_future(channel).result(timeout=30)
        yield analyzer_pb2_grpc.AnalyzerStub(channel)
        channel.close()
    finally:
        process.terminate()
        process.wait(timeout=10)


def struct(props: dict) -> struct_pb2.Struct:
    return json_format.ParseDict(props, struct_pb2.Struct())


def analyze(stub, entry: dict) -> list:
    request = analyzer_pb2.AnalyzeRequest(
        type=entry["type"], properties=struct(entry["props"]), urn=entry["urn"], name=entry["name"]
    )
    return list(stub.Analyze(request, timeout=30).diagnostics)


def analyze_stack(stub, resources: list[dict]) -> list:
    request = analyzer_pb2.AnalyzeStackRequest(
        resources=[
            analyzer_pb2.AnalyzerResource(
                type=r["type"], properties=struct(r["props"]), urn=r["urn"], name=r["name"]
            )
            for r in resources
        ]
    )
    return list(stub.AnalyzeStack(request, timeout=60).diagnostics)


def test_analyzer_info_lists_every_rule_with_its_enforcement(analyzer):
    info = analyzer.GetAnalyzerInfo(empty_pb2.Empty(), timeout=30)
    assert info.name == "commerce-platform"
    assert [p.name for p in info.policies] == [r.id for r in RULES]
    mandatory = {r.id for r in RULES if r.enforcement is Enforcement.MANDATORY}
    assert {p.name for p in info.policies if p.enforcementLevel == analyzer_pb2.MANDATORY} == mandatory


def test_real_prod_resources_pass_analyze_and_analyze_stack(analyzer, rendered):
    resources = rendered("prod")["resources"]
    assert [d.message for r in resources for d in analyze(analyzer, r)] == []
    assert [d.message for d in analyze_stack(analyzer, resources)] == []


def test_a_privileged_container_is_a_mandatory_violation(analyzer, rendered):
    resources = copy.deepcopy(rendered("prod")["resources"])
    first_container(resources, "Deployment", "orders")["securityContext"]["privileged"] = True
    entry = next(r for r in resources if r["props"] is find(resources, "Deployment", "orders"))
    [diagnostic] = analyze(analyzer, entry)
    assert diagnostic.policyName == "no-privileged"
    assert diagnostic.enforcementLevel == analyzer_pb2.MANDATORY
    assert "container 'orders' is privileged" in diagnostic.message


def test_a_deleted_hpa_is_reported_by_the_stack_policy(analyzer, rendered):
    resources = copy.deepcopy(rendered("prod")["resources"])
    remove(resources, "HorizontalPodAutoscaler", "payments")
    diagnostics = analyze_stack(analyzer, resources)
    assert [(d.policyName, d.urn.rsplit("::", 1)[1]) for d in diagnostics] == [
        ("hpa-for-service-deployment", "payments-deployment")
    ]
