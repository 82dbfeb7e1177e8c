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
from pathlib import Path

from commerce_platform import catalogue
from commerce_platform.chaos.lab import ChaosLab
from commerce_platform.chaos.scenarios import ScenarioResult

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
        "--workers",
        "2",
        "--report",
        "junit",
        "--report-junit-path",
        str(junit),
    ]


def _failed_cases(junit: Path) -> list[str]:
    if not junit.exists():
        return []
    cases = []
    for case in ET.parse(junit).getroot().iter("testcase"):
        for problem in (*case.findall("failure"), *case.findall("error")):
            message = (problem.get("message") or problem.text or "").strip().splitlines()
            cases.append(f"{case.get('name')}: {' / '.join(message[:6])[:600]}")
    return cases


def _operations(junit: Path) -> int:
    return sum(1 for _ in ET.parse(junit).getroot().iter("testcase")) if junit.exists() else 0


async def schemathesis_all(chaos: ChaosLab, max_examples: int = MAX_EXAMPLES) -> ScenarioResult:
    result = ScenarioResult("schemathesis: every operation of every service")
    started = time.monotonic()
    counts = []
    with tempfile.TemporaryDirectory() as tmp:
        for spec in catalogue.SERVICES:
            junit = Path(tmp) / f"{spec.name}.xml"
            command = st_command(chaos.url(spec.name), chaos.admin_token, junit, max_examples)
            try:
                run = await asyncio.to_thread(
                    subprocess.run,
                    command,
                    capture_output=True,
                    text=True,
                    timeout=TIMEOUT_SECONDS,
                    stdin=subprocess.DEVNULL,
                )
                output = run.stdout + run.stderr
                code: int | str = run.returncode
            except subprocess.TimeoutExpired:
                output, code = f"timed out after {TIMEOUT_SECONDS}s", "timeout"
            failures = _failed_cases(junit)
            operations = _operations(junit)
            counts.append(f"{spec.name} {operations} ops")
            clean = code == 0 and not failures and operations > 0
            detail = "clean" if clean else ("; ".join(failures) or output.strip()[-800:])
            result.check(
                f"{spec.name}: no 5xx, no schema violation",
                clean,
                f"exit {code}, {operations} operations; {detail}",
            )
    result.load = ", ".join(counts) + f" (max {max_examples} examples each, seed {SEED})"
    result.seconds = time.monotonic() - started
    return result
