"""The resilience scenarios `ops chaos` runs, as tests: same functions, invariants asserted with their details."""

from __future__ import annotations

import pytest

from commerce_ops.chaos import scenarios
from commerce_ops.chaos.lab import ChaosLab
from commerce_ops.chaos.scenarios import ScenarioResult
from commerce_ops.chaos.schema import schemathesis_all

pytestmark = [pytest.mark.chaos, pytest.mark.heavy(70)]
# schemathesis' coverage phase sends every operation its boundary and negative cases whatever this number; it bounds
# the fuzzing phase only. `ops chaos` keeps the CLI's default (schema.MAX_EXAMPLES) for a deeper look. 3 random
# examples per operation on top of the coverage phase's: measured on inventory, 280 requests instead of 320 at 10 (the
# coverage phase's 260 are the same), and 1.7 s less CPU per service; every operation of every service still runs.
SCHEMA_EXAMPLES = 3


def assert_held(result: ScenarioResult) -> None:
    assert result.checks, f"{result.name}: no invariant was checked"
    assert result.passed, f"{result.name}: {result.failures()} (client saw: {result.load})"


async def test_redis_outage_reads_fall_back_to_postgres_and_caching_resumes(chaos_lab: ChaosLab) -> None:
    assert_held(await scenarios.redis_outage(chaos_lab))


async def test_postgres_restart_loses_and_duplicates_no_order(chaos_lab: ChaosLab) -> None:
    assert_held(await scenarios.postgres_restart(chaos_lab))


async def test_sigterm_completes_in_flight_requests_and_drain_loses_none(chaos_lab: ChaosLab) -> None:
    assert_held(await scenarios.sigterm_under_load(chaos_lab))


async def test_payments_killed_mid_saga_fails_orders_and_releases_stock(chaos_lab: ChaosLab) -> None:
    assert_held(await scenarios.payments_killed(chaos_lab))


async def test_schemathesis_finds_no_5xx_and_no_schema_violation(chaos_lab: ChaosLab) -> None:
    assert_held(await schemathesis_all(chaos_lab, max_examples=SCHEMA_EXAMPLES))
