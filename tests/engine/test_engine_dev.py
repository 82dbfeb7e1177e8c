"""The real `pulumi up` of the dev stack against the local control plane, and what the API server holds after it.

The tests share one stack and run in file order: up, then idempotence, then drift against the offline render, then
previews of edits (each reverted), then the policy pack under the engine, then a review stack's life cycle.
"""

from __future__ import annotations

import base64
import json
import shutil
from pathlib import Path

import pytest
import yaml
from engine_support import GENERATED_SECRETS, OUTPUTS, commit, pulumi, report, revert, summary

from commerce_ops.engine.stack import EngineError, generated_secret
from commerce_ops.preview.baseline import render_graph
from commerce_ops.preview.plans import plan_environments
from commerce_platform import catalogue
from commerce_platform.components.meta import SECRET_CHECKSUM
from commerce_platform.environments import load_environment
from commerce_platform.policy.runner import evaluate_graph

POLICY = ("--policy-pack", "platform/policy")
CHECKED_KINDS = (
    "Service",
    "HorizontalPodAutoscaler",
    "PodDisruptionBudget",
    "NetworkPolicy",
    "Secret",
    "Ingress",
)
API_KINDS = {
    "Namespace": "namespaces",
    "ResourceQuota": "resourcequotas",
    "LimitRange": "limitranges",
    "NetworkPolicy": "networkpolicies.networking.k8s.io",
    "ServiceAccount": "serviceaccounts",
    "Secret": "secrets",
    "ConfigMap": "configmaps",
    "Service": "services",
    "StatefulSet": "statefulsets.apps",
    "Deployment": "deployments.apps",
    "Job": "jobs.batch",
    "HorizontalPodAutoscaler": "horizontalpodautoscalers.autoscaling",
    "PodDisruptionBudget": "poddisruptionbudgets.policy",
    "Ingress": "ingresses.networking.k8s.io",
}


def live(cluster, kind: str, name: str, namespace: str | None) -> dict | None:
    args = ["get", API_KINDS[kind], name, "-o", "json"]
    if namespace and kind != "Namespace":
        args += ["-n", namespace]
    done = cluster.kubectl(*args, check=False)
    if done.returncode != 0:
        return None
    return json.loads(done.stdout)


def items(cluster, kind: str, namespace: str) -> list[dict]:
    return json.loads(cluster.kubectl("get", API_KINDS[kind], "-n", namespace, "-o", "json").stdout)["items"]


def rendered(root: Path, env: str, out: Path) -> list[dict]:
    """`ops render <env>`'s manifests for the checkout at `root` (its own code)."""
    shutil.rmtree(out, ignore_errors=True)
    render_graph(root, env, out)
    return [yaml.safe_load(p.read_text()) for p in sorted((out / "manifests").glob("*.yaml"))]


def namespace_of(workspace, stack: str) -> str:
    return load_environment(stack, workspace.root).stack.namespace


def assert_rolled_out(cluster, namespace: str) -> None:
    deployments = items(cluster, "Deployment", namespace)
    names = {d["metadata"]["name"] for d in deployments}
    assert {s.name for s in catalogue.SERVICES} <= names
    for deployment in deployments:
        status, wanted = deployment.get("status", {}), deployment["spec"].get("replicas", 1)
        available = {c["type"]: c["status"] for c in status.get("conditions", [])}.get("Available")
        assert available == "True" and status.get("availableReplicas") == wanted, deployment["metadata"][
            "name"
        ]
    for statefulset in items(cluster, "StatefulSet", namespace):
        assert statefulset["status"].get("readyReplicas") == statefulset["spec"]["replicas"]
    jobs = items(cluster, "Job", namespace)
    assert {f"{s.name}-migrate" for s in catalogue.SERVICES if s.uses_postgres} <= {
        j["metadata"]["name"] for j in jobs
    }
    for job in jobs:
        assert job["status"].get("succeeded", 0) >= 1, f"job {job['metadata']['name']} did not complete"


# ------------------------------------------------------------------------------------------------------ up


def test_preview_then_up_rolls_out_the_dev_stack(workspace, cluster, engine_tmp):
    preview = pulumi(workspace, "preview", "--stack", "dev", *POLICY)
    assert "error" not in preview.stderr.lower(), preview.stderr
    up = pulumi(workspace, "up", "--yes", "--stack", "dev", *POLICY, timeout=1500)
    report(
        "pulumi up --stack dev --policy-pack platform/policy (real engine, local control plane)",
        summary(up.stdout),
    )

    namespace = namespace_of(workspace, "dev")
    assert_rolled_out(cluster, namespace)
    manifests = rendered(workspace.root, "dev", engine_tmp / "render-dev")
    for kind in CHECKED_KINDS:
        wanted = {m["metadata"]["name"] for m in manifests if m["kind"] == kind}
        present = {o["metadata"]["name"] for o in items(cluster, kind, namespace)}
        assert wanted and wanted <= present, f"{kind}: missing {sorted(wanted - present)}"
    ingress = items(cluster, "Ingress", namespace)[0]
    assert ingress["status"]["loadBalancer"]["ingress"], "the Ingress never got an address"
    outputs = json.loads(pulumi(workspace, "stack", "output", "--json", "--stack", "dev").stdout)
    assert outputs["namespace"] == namespace


def test_second_preview_expects_no_changes(workspace):
    pulumi(workspace, "preview", "--expect-no-changes", "--stack", "dev", *POLICY)


# -------------------------------------------------------------------------------------------- drift check

# Fields the API server or a controller fills in, which the program never sets.
GENERATED_METADATA = (
    "uid",
    "resourceVersion",
    "generation",
    "creationTimestamp",
    "managedFields",
    "annotations",
    "finalizers",
    "ownerReferences",
)


def _quantity(value):
    return str(value)


def drift(want, got, path: str = "") -> list[str]:
    """Where the rendered `want` is not contained in the live `got` (server defaults in `got` are fine)."""
    if isinstance(want, dict):
        if not isinstance(got, dict):
            return [f"{path}: rendered {want!r}, live {got!r}"]
        problems = []
        for key, value in want.items():
            if key not in got:
                if value in (None, [], {}, False):
                    continue  # the server drops empty values
                problems.append(f"{path}.{key}: rendered {value!r}, absent live")
                continue
            problems += drift(value, got[key], f"{path}.{key}")
        return problems
    if isinstance(want, list):
        if not isinstance(got, list) or len(want) != len(got):
            return [f"{path}: rendered {want!r}, live {got!r}"]
        return [
            p for i, (w, g) in enumerate(zip(want, got, strict=True)) for p in drift(w, g, f"{path}[{i}]")
        ]
    if want == got or _quantity(want) == _quantity(got):
        return []
    return [f"{path}: rendered {want!r}, live {got!r}"]


def _mask_secret_checksum(obj: dict) -> None:
    """A pod template's checksum of the secret material: present on both sides, its value derived from the
    stack's secrets, which the offline render does not hold (it renders stand-ins)."""
    annotations = obj.get("spec", {}).get("template", {}).get("metadata", {}).get("annotations", {})
    if SECRET_CHECKSUM in annotations:
        annotations[SECRET_CHECKSUM] = "[checksum of secrets]"


def comparable(manifest: dict) -> dict:
    """The rendered manifest without what only the live side can know: secret values (rendered as [secret])."""
    manifest = json.loads(json.dumps(manifest))
    manifest.get("metadata", {}).pop("annotations", None)
    if manifest["kind"] == "Secret":
        manifest["data"] = dict.fromkeys(
            manifest.pop("stringData", {}) | manifest.get("data", {}), "[secret]"
        )
    _mask_secret_checksum(manifest)
    return manifest


def comparable_live(obj: dict) -> dict:
    obj = json.loads(json.dumps(obj))
    for key in GENERATED_METADATA:
        obj.get("metadata", {}).pop(key, None)
    obj.pop("status", None)
    if obj["kind"] == "Secret":
        obj["data"] = dict.fromkeys(obj.get("data", {}), "[secret]")
    _mask_secret_checksum(obj)
    return obj


def test_live_objects_match_the_offline_render(workspace, cluster, engine_tmp):
    namespace = namespace_of(workspace, "dev")
    problems = []
    manifests = rendered(workspace.root, "dev", engine_tmp / "render-dev")
    assert len(manifests) > 20
    for manifest in manifests:
        kind, name = manifest["kind"], manifest["metadata"]["name"]
        obj = live(cluster, kind, name, namespace)
        if obj is None:
            problems.append(f"{kind}/{name}: rendered, not in the API server")
            continue
        problems += [f"{kind}/{name}{p}" for p in drift(comparable(manifest), comparable_live(obj))]
    assert not problems, "the offline render and the real provider disagree:\n" + "\n".join(problems)


def test_secret_values_reach_the_api_server_and_nothing_else(workspace, cluster):
    """The values set with `pulumi config set --secret` are in the Secrets (decoded), and in no pulumi output."""
    namespace = namespace_of(workspace, "dev")
    decoded = {
        base64.b64decode(v).decode()
        for s in items(cluster, "Secret", namespace)
        for v in (s.get("data") or {}).values()
    }
    admin = GENERATED_SECRETS["dev/adminPassword"]
    assert any(admin == value for value in decoded), "adminPassword did not reach a Secret"
    for value in GENERATED_SECRETS.values():
        for output in OUTPUTS:
            assert value not in output, "a secret value appeared in pulumi's output"


# ------------------------------------------------------------------------------- engine preview vs ops diff


def engine_operations(workspace, stack: str) -> dict[str, str]:
    """{urn: create|update|replace|delete} from `pulumi preview --json` (same-ops and reads dropped)."""
    done = pulumi(workspace, "preview", "--json", "--stack", stack)
    steps = json.loads(done.stdout).get("steps", [])
    operations = {}
    for step in steps:
        op = step["op"]
        if op in ("same", "read", "refresh"):
            continue
        if op in ("create-replacement", "delete-replaced", "replace"):
            op = "replace"
        if step.get("type", "").startswith("pulumi:"):
            continue
        operations[step["urn"]] = op
    return operations


def ops_diff_operations(workspace, stack: str) -> dict[str, str]:
    plan = plan_environments([stack], "HEAD", root=workspace.root)[0]
    return {
        change.urn: str(change.action) for change in plan.changes if not change.type.startswith("pulumi:")
    }


def edit_yaml(path: Path, edit) -> None:
    data = yaml.safe_load(path.read_text())
    edit(data)
    path.write_text(yaml.safe_dump(data, sort_keys=False))


def _hpa_max(root: Path) -> None:
    edit_yaml(root / "environments/dev.yaml", lambda d: d["services"]["orders"]["autoscaling"].update(max=5))


def _setting(root: Path) -> None:
    edit_yaml(
        root / "environments/dev.yaml",
        lambda d: d["services"]["inventory"]["settings"].update(PRODUCT_CACHE_TTL_SECONDS=45),
    )


def _digest(root: Path) -> None:
    def edit(data):
        release = data["services"]["payments"]["release"]
        data["services"]["payments"]["release"] = release.split("@")[0] + "@sha256:" + "ab" * 32

    edit_yaml(root / "environments/dev.yaml", edit)


def _selector_label(root: Path) -> None:
    """The services' pods get another component label: each Deployment's (immutable) selector changes."""
    service = root / "platform/src/commerce_platform/components/service.py"
    text = service.read_text()
    assert text.count('"api"') >= 2  # the selector and the labels
    service.write_text(text.replace('"api"', '"web"'))


def _statefulset_selector(root: Path) -> None:
    """Postgres's pods get another component label: the StatefulSet's (immutable) selector changes."""
    stores = root / "platform/src/commerce_platform/components/datastores.py"
    text = stores.read_text()
    assert text.count('"database"') >= 2  # the selector and the labels
    stores.write_text(text.replace('"database"', '"postgres-server"'))


EDITS = {
    "hpa-max": _hpa_max,
    "non-secret-setting": _setting,
    "image-digest": _digest,
    "selector-label": _selector_label,
    "statefulset-selector": _statefulset_selector,
}


# A selector change replaces a fixed-name workload (the selector is immutable). With delete_before_replace on
# them, the provider's preview dry-runs a Deployment's replacement under another name (pulumi-kubernetes#3053),
# so `pulumi preview` shows the replaces `ops diff` reports. Not for a StatefulSet: the provider retries under
# another name only when the API server says "field is immutable", and for a StatefulSet it says "Forbidden:
# updates to statefulset spec ..." (pulumi-kubernetes#3984, open), so that preview fails. Strict, so a provider
# that fixes it shows here.
STATEFULSET_PREVIEW = pytest.mark.xfail(
    reason="pulumi-kubernetes#3984: the provider cannot preview a StatefulSet replacement",
    raises=EngineError,
    strict=True,
)


@pytest.mark.parametrize(
    "edit",
    [pytest.param(e, marks=STATEFULSET_PREVIEW) if e == "statefulset-selector" else e for e in sorted(EDITS)],
)
def test_engine_preview_and_ops_diff_agree(workspace, edit):
    EDITS[edit](workspace.root)
    try:
        engine = engine_operations(workspace, "dev")
        offline = ops_diff_operations(workspace, "dev")
    finally:
        revert(workspace.root)
    assert engine, f"{edit}: the engine previews no change"
    assert engine == offline, f"{edit}: engine {engine} vs ops diff {offline}"


def test_secret_value_change_agrees(workspace):
    value = generated_secret("adminPassword")
    GENERATED_SECRETS["dev/adminPassword (changed)"] = value
    pulumi(workspace, "config", "set", "--secret", "--stack", "dev", "adminPassword", stdin=value)
    try:
        engine = engine_operations(workspace, "dev")
        offline = ops_diff_operations(workspace, "dev")
    finally:
        revert(workspace.root)
    assert engine, "the engine previews no change for a new secret value"
    assert engine == offline, f"engine {engine} vs ops diff {offline}"


# ----------------------------------------------------------------------------------------- policy pack


def test_policy_pack_blocks_a_mutated_program_with_the_ops_policy_rules(workspace, engine_tmp):
    meta = workspace.root / "platform/src/commerce_platform/components/meta.py"
    images = workspace.root / "platform/src/commerce_platform/images.py"
    hardened, pinned = '"allowPrivilegeEscalation": False,', "return pulumi.Output.from_input(release), None"
    assert hardened in meta.read_text() and pinned in images.read_text(), "the mutations no longer apply"
    meta.write_text(meta.read_text().replace(hardened, '"privileged": True,', 1))
    images.write_text(images.read_text().replace(pinned, 'return "nginx:latest", None', 1))
    try:
        graph = render_graph(workspace.root, "dev", engine_tmp / "render-mutated")
        offline = {v.rule.id for v in evaluate_graph(graph) if v.mandatory}
        done = pulumi(workspace, "preview", "--stack", "dev", *POLICY, check=False)
    finally:
        revert(workspace.root)
    assert {"no-privileged", "image-tag-pinned"} <= offline
    assert done.returncode != 0, "the policy pack let a privileged :latest container through"
    output = done.stdout + done.stderr
    blocked = {rule for rule in offline if f"[mandatory]  {rule}" in output or f"{rule}" in output}
    assert blocked == offline, (
        f"engine reported {sorted(blocked)}, ops policy {sorted(offline)}:\n{output[-3000:]}"
    )


# ---------------------------------------------------------------------------------------- review stack


def test_review_stack_comes_up_in_its_own_namespace_and_destroy_removes_it(workspace, cluster):
    stack = "pr-7"
    for key, value in workspace.init_stack(stack).items():
        GENERATED_SECRETS[f"{stack}/{key}"] = value
    commit(workspace.root, f"{stack}: stack secrets")
    namespace = namespace_of(workspace, stack)
    assert namespace == f"{namespace_of(workspace, 'dev')}-pr-7"
    up = pulumi(workspace, "up", "--yes", "--stack", stack, *POLICY, timeout=1500)
    report(f"pulumi up --stack {stack}", summary(up.stdout))
    assert_rolled_out(cluster, namespace)
    assert live(cluster, "Namespace", namespace, None) is not None

    destroy = pulumi(workspace, "destroy", "--yes", "--stack", stack, timeout=1500)
    report(f"pulumi destroy --stack {stack}", summary(destroy.stdout))
    gone = live(cluster, "Namespace", namespace, None)
    assert gone is None or gone["status"].get("phase") == "Terminating"
    for kind in ("Deployment", "Job", "Secret", "PersistentVolumeClaim"):
        resource = API_KINDS.get(kind, "persistentvolumeclaims")
        left = cluster.kubectl("get", resource, "-n", namespace, "-o", "name", check=False).stdout.split()
        assert not left, f"{kind} left after destroy: {left}"
    pulumi(workspace, "stack", "rm", "--yes", "--stack", stack)
    # dev is untouched by the review stack's destroy
    assert_rolled_out(cluster, namespace_of(workspace, "dev"))
