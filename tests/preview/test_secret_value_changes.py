"""A changed secret value in Pulumi.<stack>.yaml shows in `ops diff` (as the engine shows it), never its value.

Found by the engine tier (tests/engine, test_secret_value_change_agrees): the real engine replaces the Secret when
`pulumi config set --secret` changes a value, while the offline render gave every secret the same placeholder, so
`ops diff` said "no changes".
"""

from __future__ import annotations

import shutil
from pathlib import Path

import yaml

from commerce_platform.preview.changes import SECRET, diff_graphs
from commerce_platform.render import render_environment

REPO = Path(__file__).resolve().parents[2]


def _checkout(tmp: Path, ciphertext: str | None) -> Path:
    root = tmp / (ciphertext or "none")
    (root / "environments").mkdir(parents=True)
    for path in (REPO / "environments").glob("*.yaml"):
        shutil.copy2(path, root / "environments" / path.name)
    for path in REPO.glob("Pulumi*.yaml"):
        shutil.copy2(path, root / path.name)
    if ciphertext:
        stack = yaml.safe_load((root / "Pulumi.dev.yaml").read_text())
        stack["config"]["commerce-platform:adminPassword"] = {"secure": ciphertext}
        (root / "Pulumi.dev.yaml").write_text(yaml.safe_dump(stack))
    return root


def _plan(tmp: Path, before: str | None, after: str | None):
    old = render_environment("dev", _checkout(tmp / "a", before), check_schema=False)
    new = render_environment("dev", _checkout(tmp / "b", after), check_schema=False)
    return diff_graphs(old, new), new


def test_a_new_ciphertext_replaces_the_secret_that_carries_it(tmp_path):
    plan, graph = _plan(tmp_path, "v1:first-ciphertext", "v1:second-ciphertext")
    changed = {(c.action, c.kind, c.name) for c in plan.changes}
    assert changed == {("replace", "Secret", "users-secret")}
    (change,) = plan.changes
    assert {(f.before, f.after) for f in change.fields} == {(SECRET, f"{SECRET} (changed)")}
    text = repr(graph)
    assert "first-ciphertext" not in text and "second-ciphertext" not in text


def test_the_same_ciphertext_is_no_change(tmp_path):
    plan, _ = _plan(tmp_path, "v1:same", "v1:same")
    assert plan.empty
