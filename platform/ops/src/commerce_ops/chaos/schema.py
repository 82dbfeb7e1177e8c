"""schemathesis against each service's OpenAPI document: zero 5xx and zero responses that break the schema.

Runs the `st` CLI (schemathesis 4) per service with the admin's token, a fixed seed and bounded examples, and
reads its JUnit report back so every failing case is named in the result.
"""

from __future__ import annotations

import asyncio
import subprocess
import sys
import tempfile
import time
import xml.etree.ElementTree as ET
from dataclasses import dataclass
from pathlib import Path

from commerce_ops.chaos.lab import ChaosLab
from commerce_ops.chaos.scenarios import ScenarioResult
from commerce_platform import catalogue

CHECKS = "not_a_server_error,response_schema_conformance"
MAX_EXAMPLES = 30
SEED = 20261129
TIMEOUT_SECONDS = 240


def st_command(base_url: str, token: str, junit: Path, max_examples: int = MAX_EXAMPLES) -> list[str]:
    return [
        str(Path(sys.executable).with_name("st")),
        "run",
        f"{base_url}/openapi.json",
        "--checks",
        CHECKS,
        "--max-examples",
        str(max_examples),
        "--phases",
        "examples,coverage,fuzzing",
        "--seed",
        str(SEED),
        "--header",
        f"Authorization: Bearer {token}",
        "--request-timeout",
        "10",
        "--suppress-health-check",
        "all",
        # One worker: with several threads, CPython 3.11's parser can crash inside hypothesis
        # ("AST constructor recursion depth mismatch", python/cpython gh-106905) — a tool failure, not a finding.
        "--workers",
        "1",
        "--report",
        "junit",
        "--report-junit-path",
        str(junit),
    ]


def _failed_cases(junit: Path) -> list[str]:
    """`<operation>: <each broken check> (reproduce: <curl>)` per failing operation, from st's JUnit report."""
    if not junit.exists():
        return []
    cases = []
    for case in ET.parse(junit).getroot().iter("testcase"):
        for problem in (*case.findall("failure"), *case.findall("error")):
            lines = [line.strip() for line in (problem.text or problem.get("message") or "").splitlines()]
            broken = [line.removeprefix("- ") for line in lines if line.startswith("- ")] or lines[:1]
            curl = next((line for line in lines if line.startswith("curl ")), "")
            cases.append(
                f"{case.get('name')}: {'; '.join(broken)}" + (f" (reproduce: {curl})" if curl else "")
            )
    return cases


def _operations(junit: Path) -> int:
    return sum(1 for _ in ET.parse(junit).getroot().iter("testcase")) if junit.exists() else 0


@dataclass(frozen=True)
class StRun:
    code: int | str  # st's exit code, or "timeout"
    operations: int
    failures: list[str]  # one line per failing case: operation and what broke
    output: str

    @property
    def clean(self) -> bool:
        return self.code == 0 and not self.failures and self.operations > 0


def run_st(base_url: str, token: str, max_examples: int = MAX_EXAMPLES) -> StRun:
    with tempfile.TemporaryDirectory() as tmp:
        junit = Path(tmp) / "junit.xml"
        command = st_command(base_url, token, junit, max_examples)
        try:
            run = subprocess.run(
                command, capture_output=True, text=True, timeout=TIMEOUT_SECONDS, stdin=subprocess.DEVNULL
            )
            output, code = run.stdout + run.stderr, run.returncode
        except subprocess.TimeoutExpired:
            output, code = f"timed out after {TIMEOUT_SECONDS}s", "timeout"
        return StRun(code, _operations(junit), _failed_cases(junit), output)


async def schemathesis_all(chaos: ChaosLab, max_examples: int = MAX_EXAMPLES) -> ScenarioResult:
    """The four services side by side (each `st` run waits on its service most of the time)."""
    result = ScenarioResult("schemathesis: every operation of every service")
    started = time.monotonic()
    runs = await asyncio.gather(
        *(
            asyncio.to_thread(run_st, chaos.url(spec.name), chaos.admin_token, max_examples)
            for spec in catalogue.SERVICES
        )
    )
    for spec, run in zip(catalogue.SERVICES, runs, strict=True):
        detail = "clean" if run.clean else ("; ".join(run.failures) or run.output.strip()[-800:])
        result.check(
            f"{spec.name}: no 5xx, no schema violation",
            run.clean,
            f"exit {run.code}, {run.operations} operations; {detail}",
        )
    counts = ", ".join(
        f"{spec.name} {run.operations} ops" for spec, run in zip(catalogue.SERVICES, runs, strict=True)
    )
    result.load = counts + f" (max {max_examples} examples each, seed {SEED})"
    result.seconds = time.monotonic() - started
    return result
