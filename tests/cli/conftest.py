"""tests/cli: the `ops` command line as a user meets it (help, errors, `ops dev` day to day), run as real
subprocesses. The helpers that start `ops` are shared with tests/e2e (devstack.py)."""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "e2e"))
