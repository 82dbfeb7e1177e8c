"""One throw-away platform for the chaos scenarios: its own embedded Postgres and Redis (the scenarios stop and
crash them, so never the machine's), free ports, `chaos_<service>` databases, prod's service settings.

Scenarios run in file order against it; each restarts whatever it stopped, so the next starts from a healthy lab.

One setting differs from prod's, as in the service and e2e tests (tests/services/harness.py, tests/e2e/devstack.py):
users hashes passwords with real argon2id at its lowest cost. schemathesis registers and logs in users by the
dozen (~0.26 s of CPU each at prod's cost: ~3 s of the users run), and no scenario is about that cost. `ops chaos`
keeps prod's.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from commerce_ops.chaos.lab import ChaosLab

LOWEST_HASH_COST = {"users": {"PASSWORD_HASH_TIME_COST": "1", "PASSWORD_HASH_MEMORY_KIB": "1024"}}


@pytest.fixture(scope="session")
def chaos_lab() -> Iterator[ChaosLab]:
    lab = ChaosLab.start(overrides=LOWEST_HASH_COST)
    try:
        yield lab
    finally:
        lab.stop()
