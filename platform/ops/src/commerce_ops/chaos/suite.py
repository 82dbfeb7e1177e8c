"""Run the scenarios in order against one lab and collect their results (`ops chaos` calls this)."""

from __future__ import annotations

import asyncio
from collections.abc import Callable

from commerce_ops.chaos.lab import ChaosLab
from commerce_ops.chaos.scenarios import SCENARIOS, Scenario, ScenarioResult
from commerce_ops.chaos.schema import schemathesis_all

ALL: dict[str, Scenario] = {**SCENARIOS, "schemathesis": schemathesis_all}


def run_suite(names: list[str] | None = None, echo: Callable[[str], None] = print) -> list[ScenarioResult]:
    unknown = sorted(set(names or []) - ALL.keys())
    if unknown:
        raise ValueError(f"unknown scenario(s) {', '.join(unknown)}; known: {', '.join(ALL)}")
    chosen = [name for name in ALL if not names or name in names]
    chaos = ChaosLab.start(echo)
    results = []
    try:
        for name in chosen:
            echo(f"chaos: {name} ...")
            result = asyncio.run(ALL[name](chaos))
            echo(f"chaos: {name}: {'passed' if result.passed else 'FAILED'} in {result.seconds:.1f} s")
            results.append(result)
    finally:
        chaos.stop()
    return results
