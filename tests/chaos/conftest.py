"""One throw-away platform for the chaos scenarios: its own embedded Postgres and Redis (the scenarios stop and
crash them, so never the machine's), free ports, `chaos_<service>` databases, prod's service settings.

Scenarios run in file order against it; each restarts whatever it stopped, so the next starts from a healthy lab.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from commerce_ops.chaos.lab import ChaosLab


@pytest.fixture(scope="session")
def chaos_lab() -> Iterator[ChaosLab]:
    lab = ChaosLab.start()
    try:
        yield lab
    finally:
        lab.stop()
