"""A changed secret value in Pulumi.<stack>.yaml shows in `ops diff` (as the engine shows it), never its value.

Found by the engine tier (tests/engine, test_secret_value_change_agrees): the real engine replaces the Secret when
`pulumi config set --secret` changes a value, while the offline render gave every secret the same placeholder, so
`ops diff` said "no changes". And a new credential must reach the pods: every pod template that reads a secret
carries a digest of that secret material (commerce-platform/secret-checksum, never the value), so the
Deployments that read it roll and the Jobs that use it are replaced (re-run).
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import yaml

from commerce_ops.preview.changes import SECRET, diff_graphs
from commerce_ops.preview.report import to_markdown, to_text
from commerce_ops.render import placeholder_secret, render_environment

REPO = Path(__file__).resolve().parents[2]
CHECKSUM = "commerce-platform/secret-checksum"


def _checkout(tmp: Path, secrets: dict[str, str]) -> Path:
    root = tmp / "-".join(secrets.values() or ["none"])
    (root / "environments").mkdir(parents=True)
    for path in (REPO / "environments").glob("*.yaml"):
        shutil.copy2(path, root / "environments" / path.name)
    for path in REPO.glob("Pulumi*.yaml"):
        shutil.copy2(path, root / path.name)
    if secrets:
        stack = yaml.safe_load((root / "Pulumi.dev.yaml").read_text())
        for key, ciphertext in secrets.items():
            stack["config"][f"commerce-platform:{key}"] = {"secure": ciphertext}
        (root / "Pulumi.dev.yaml").write_text(yaml.safe_dump(stack))
    return root


def _plan(tmp: Path, key: str, before: str | None, after: str | None):
    old = render_environment("dev", _checkout(tmp / "a", {key: before} if before else {}), check_schema=False)
    new = render_environment("dev", _checkout(tmp / "b", {key: after} if after else {}), check_schema=False)
    return diff_graphs(old, new), old, new


def _changes(plan) -> set[tuple[str, str, str]]:
    return {(c.action, c.kind, c.name) for c in plan.changes}


def _no_value_anywhere(key: str, ciphertexts: tuple[str, ...], plan, *graphs) -> None:
    values = [*ciphertexts, *(placeholder_secret("dev", key, c) for c in ciphertexts)]
    text = to_text(plan) + to_markdown([plan]) + "".join(json.dumps(g, default=str) for g in graphs)
    for value in values:
        assert value not in text


def test_a_new_admin_password_replaces_its_secret_and_rolls_the_deployment_that_reads_it(tmp_path):
    plan, old, new = _plan(tmp_path, "adminPassword", "v1:first-ciphertext", "v1:second-ciphertext")
    # Only users reads ADMIN_PASSWORD; its migration Job does not (DATABASE_URL only), so it stays.
    assert _changes(plan) == {
        ("replace", "Secret", "users-secret"),
        ("update", "Deployment", "users-deployment"),
    }
    secret = next(c for c in plan.changes if c.kind == "Secret")
    assert {(f.before, f.after) for f in secret.fields} == {(SECRET, f"{SECRET} (changed)")}
    deployment = next(c for c in plan.changes if c.kind == "Deployment")
    assert [f.dotted for f in deployment.fields] == [f"spec.template.metadata.annotations.{CHECKSUM}"]
    _no_value_anywhere("adminPassword", ("v1:first-ciphertext", "v1:second-ciphertext"), plan, old, new)


def test_a_new_database_password_rolls_its_service_and_reruns_its_migration_and_the_init_job(tmp_path):
    plan, old, new = _plan(tmp_path, "ordersDbPassword", "v1:orders-one", "v1:orders-two")
    assert _changes(plan) == {
        ("replace", "Secret", "orders-secret"),
        ("replace", "Secret", "postgres-credentials"),
        ("update", "Deployment", "orders-deployment"),
        ("replace", "Job", "orders-migration"),
        ("replace", "Job", "postgres-init-job"),
    }
    for job in (c for c in plan.changes if c.kind == "Job"):
        assert job.replace_reasons == (f"spec.template.metadata.annotations.{CHECKSUM}",)
    _no_value_anywhere("ordersDbPassword", ("v1:orders-one", "v1:orders-two"), plan, old, new)


def test_every_pod_template_that_reads_a_secret_carries_its_checksum_and_jobs_replace_when_unready(tmp_path):
    graph = render_environment("dev", _checkout(tmp_path, {}), check_schema=False)
    for entry in graph["manifests"]:
        obj = entry["object"]
        if obj["kind"] not in ("Deployment", "Job"):
            continue
        spec = obj["spec"]["template"]["spec"]
        reads_secret = any(
            "secretKeyRef" in (e.get("valueFrom") or {})
            for c in spec["containers"]
            for e in c.get("env") or []
        )
        annotations = obj["spec"]["template"]["metadata"].get("annotations") or {}
        assert (CHECKSUM in annotations) == reads_secret, obj["metadata"]
        if obj["kind"] == "Job":
            assert obj["metadata"]["annotations"]["pulumi.com/replaceUnready"] == "true"


def test_the_same_ciphertext_is_no_change(tmp_path):
    plan, _, _ = _plan(tmp_path, "adminPassword", "v1:same", "v1:same")
    assert plan.empty
