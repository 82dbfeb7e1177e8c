"""checkov over rendered manifests, with the one checked-in skip list (platform/policy/checkov-skips.yaml).

Offline by construction: `--skip-download` (no Prisma/BC guidelines fetch), kubernetes framework only.

checkov runs every check and the skips are applied to its findings here, rather than passed as `--skip-check`
(which stops a check from running at all): so one run both proves zero failed checks outside the skip list and
names any skip that no longer matches a failed check (`stale_skips`: remove it from the list). checkov's own
start-up is most of a run's cost (~6 s of CPU importing its frameworks), so one run instead of two halves it.
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

SKIPS_FILE = Path("platform") / "policy" / "checkov-skips.yaml"  # relative to the repo root
CHECK_ID = re.compile(r"^CKV2?_K8S_[0-9]+$")


@dataclass(frozen=True)
class CheckovSkip:
    check_id: str
    reason: str


@dataclass(frozen=True)
class CheckovFailure:
    check_id: str
    check_name: str
    resource: str
    file: str


@dataclass(frozen=True)
class CheckovReport:
    passed: int
    failed: int
    skipped: int
    parsing_errors: int
    resource_count: int
    failures: tuple[CheckovFailure, ...]  # the failed checks the skip list does not name
    stale_skips: tuple[str, ...] = ()  # skipped check ids that failed nowhere: no longer needed


def load_skips(path: Path) -> list[CheckovSkip]:
    """The skip list; ValueError (one line) unless every entry has a checkov k8s id and a real reason."""
    try:
        document = yaml.safe_load(path.read_text())
    except OSError as exc:
        raise ValueError(f"cannot read {path}: {exc.strerror}") from None
    entries = document.get("skips") if isinstance(document, dict) else None
    if not isinstance(entries, list):
        raise ValueError(f"{path}: expected a top-level 'skips' list")
    skips = []
    for index, entry in enumerate(entries):
        check_id = entry.get("id") if isinstance(entry, dict) else None
        reason = entry.get("reason") if isinstance(entry, dict) else None
        if not isinstance(check_id, str) or not CHECK_ID.match(check_id):
            raise ValueError(
                f"{path}: skips[{index}].id must be a checkov Kubernetes check id like CKV_K8S_11"
            )
        if not isinstance(reason, str) or len(reason.split()) < 5:
            raise ValueError(f"{path}: skips[{index}] ({check_id}) needs a reason of at least five words")
        skips.append(CheckovSkip(check_id, " ".join(reason.split())))
    if len({s.check_id for s in skips}) != len(skips):
        raise ValueError(f"{path}: a check id is listed twice")
    return skips


def checkov_executable() -> str:
    beside_python = Path(sys.executable).with_name("checkov")
    found = str(beside_python) if beside_python.exists() else shutil.which("checkov")
    if not found:
        raise FileNotFoundError("checkov is not installed (it is in the dev group: uv sync)")
    return found


def _report(output: Any, skip_ids: frozenset[str] = frozenset()) -> CheckovReport:
    """checkov's JSON is one report, a list of reports, or a bare summary when it found nothing to scan. Results of
    a check in `skip_ids` count neither as passed nor as failed (as if `--skip-check` had kept it from running);
    a skipped check that failed nowhere is stale."""
    reports = output if isinstance(output, list) else [output]
    totals = dict.fromkeys(("passed", "failed", "skipped", "parsing_errors", "resource_count"), 0)
    failures = []
    needed: set[str] = set()
    for report in reports:
        summary = report.get("summary", report)
        for key in totals:
            totals[key] += int(summary.get(key, 0))
        results = report.get("results", {})
        totals["passed"] -= sum(p["check_id"] in skip_ids for p in results.get("passed_checks", []))
        for failed in results.get("failed_checks", []):
            if failed["check_id"] in skip_ids:
                needed.add(failed["check_id"])
                totals["failed"] -= 1
                continue
            failures.append(
                CheckovFailure(
                    failed["check_id"], failed["check_name"], failed["resource"], failed["file_path"]
                )
            )
    return CheckovReport(
        **totals,
        failures=tuple(sorted(failures, key=lambda f: (f.check_id, f.resource))),
        stale_skips=tuple(sorted(skip_ids - needed)),
    )


def run_checkov(manifests: Path, skips: list[CheckovSkip]) -> CheckovReport:
    """checkov (every check) on every manifest in `manifests`; the `skips` are applied to its findings."""
    if not manifests.is_dir() or not any(manifests.glob("*.yaml")):
        raise ValueError(f"no manifests in {manifests} (render the environment first)")
    command = [
        checkov_executable(),
        "--framework", "kubernetes",
        "--skip-download",
        "--directory", str(manifests),
        "--compact",
        "--output", "json",
    ]  # fmt: skip
    # Not --quiet: the passed checks are listed too, so those of a skipped check are left out of the count.
    done = subprocess.run(command, capture_output=True, text=True, check=False)
    # checkov exits 1 when a check fails; anything else, or output that is not JSON, is checkov itself failing.
    try:
        output = json.loads(done.stdout)
    except json.JSONDecodeError:
        last = (done.stderr.strip().splitlines() or ["no output"])[-1]
        raise RuntimeError(f"checkov failed (exit {done.returncode}): {last}") from None
    return _report(output, frozenset(s.check_id for s in skips))
