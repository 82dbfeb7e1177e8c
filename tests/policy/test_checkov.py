"""checkov (kubernetes framework, --skip-download) on the real rendered prod manifests: zero failed checks, and
every skip in platform/policy/checkov-skips.yaml has a reason and is still needed.

One real checkov run (`ops policy --graph … --checkov`) serves both: checkov runs every check and `ops` applies
the skips to its findings, naming a skip that matches no failed check (checkov's start-up is most of a run).
"""

from __future__ import annotations

from pathlib import Path

import pytest
from typer.testing import CliRunner

from commerce_ops.cli import app
from commerce_ops.policy.checkov import SKIPS_FILE, CheckovSkip, _report, load_skips

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def skips():
    return load_skips(REPO / SKIPS_FILE)


@pytest.fixture(scope="module")
def checkov_prod(prod_render_dir):
    """`ops policy --graph <prod>/graph.json --checkov`, run once for this module."""
    return CliRunner().invoke(
        app, ["policy", "--graph", str(prod_render_dir / "graph.json"), "--checkov"], env={"COLUMNS": "200"}
    )


def test_ops_policy_checkov_on_rendered_prod_manifests_has_zero_failed(checkov_prod):
    assert "checkov: " in checkov_prod.output, checkov_prod.output
    assert ", 0 failed, 0 parsing errors" in checkov_prod.output, checkov_prod.output
    assert checkov_prod.exit_code == 0


def test_every_skip_has_a_reason_and_is_still_needed(checkov_prod, skips):
    assert skips and all(len(s.reason.split()) >= 5 for s in skips)
    # Every skipped check still fails on some prod manifest (no stale skip).
    assert (
        f"({len(skips)} checks skipped with reasons in {SKIPS_FILE}, each needed)" in checkov_prod.output
    ), checkov_prod.output


def test_skips_are_applied_to_checkovs_findings_and_a_stale_skip_is_named():
    """How a run of every check becomes the report: a skipped check's results count neither as passed nor as
    failed, and a skip whose check failed nowhere is stale (checkov's JSON shape, written out here)."""

    def check(check_id: str, resource: str) -> dict:
        return {
            "check_id": check_id,
            "check_name": f"{check_id} name",
            "resource": resource,
            "file_path": "/f",
        }

    output = {
        "summary": {"passed": 4, "failed": 3, "skipped": 0, "parsing_errors": 0, "resource_count": 2},
        "results": {
            "passed_checks": [check("CKV_K8S_1", "a"), check("CKV_K8S_1", "b"), check("CKV_K8S_11", "a")]
            + [check("CKV_K8S_40", "b")],
            "failed_checks": [check("CKV_K8S_11", "b"), check("CKV_K8S_2", "a"), check("CKV_K8S_2", "b")],
        },
    }
    skipped = [CheckovSkip(i, "one two three four five") for i in ("CKV_K8S_11", "CKV_K8S_40")]
    report = _report(output, frozenset(s.check_id for s in skipped))
    assert (report.passed, report.failed, report.resource_count) == (2, 2, 2)
    assert [(f.check_id, f.resource) for f in report.failures] == [("CKV_K8S_2", "a"), ("CKV_K8S_2", "b")]
    assert report.stale_skips == ("CKV_K8S_40",)
    unskipped = _report(output)
    assert (unskipped.passed, unskipped.failed, unskipped.stale_skips) == (4, 3, ())


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
