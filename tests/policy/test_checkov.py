"""checkov (kubernetes framework, --skip-download) on the real rendered prod manifests: zero failed checks, and
every skip in platform/policy/checkov-skips.yaml has a reason and is still needed."""

from __future__ import annotations

from pathlib import Path

import pytest
from typer.testing import CliRunner

from commerce_ops.cli import app
from commerce_ops.policy.checkov import SKIPS_FILE, load_skips, run_checkov

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def skips():
    return load_skips(REPO / SKIPS_FILE)


def test_ops_policy_checkov_on_rendered_prod_manifests_has_zero_failed(prod_render_dir):
    result = CliRunner().invoke(
        app, ["policy", "--graph", str(prod_render_dir / "graph.json"), "--checkov"], env={"COLUMNS": "200"}
    )
    assert "checkov: " in result.output, result.output
    assert ", 0 failed, 0 parsing errors" in result.output, result.output
    assert result.exit_code == 0


def test_every_skip_has_a_reason_and_is_still_needed(prod_render_dir, skips):
    assert skips and all(len(s.reason.split()) >= 5 for s in skips)
    report = run_checkov(prod_render_dir / "manifests", [], only=[s.check_id for s in skips])
    assert {f.check_id for f in report.failures} == {s.check_id for s in skips}  # no stale skip


@pytest.mark.parametrize(
    "text, message",
    [
        ("skips:\n  - id: CKV_K8S_11\n", "needs a reason"),
        ("skips:\n  - id: CKV_K8S_11\n    reason: because\n", "needs a reason of at least five words"),
        (
            "skips:\n  - id: K8S_11\n    reason: a reason that is long enough\n",
            "must be a checkov Kubernetes",
        ),
        ("skips:\n" + "  - {id: CKV_K8S_1, reason: one two three four five}\n" * 2, "listed twice"),
        ("nothing: here\n", "top-level 'skips' list"),
    ],
)
def test_bad_skip_file_is_a_one_line_error(tmp_path, text, message):
    path = tmp_path / "skips.yaml"
    path.write_text(text)
    with pytest.raises(ValueError, match=message):
        load_skips(path)
