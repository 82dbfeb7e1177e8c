"""The repo-wide checks CI's lint job runs, here too, so `./.ci/ops test` alone catches them."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
RUFF = Path(sys.executable).with_name("ruff")


def test_ruff_lint_is_clean():
    result = subprocess.run([RUFF, "check", "."], cwd=REPO, capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr


def test_ruff_format_is_clean():
    result = subprocess.run([RUFF, "format", "--check", "."], cwd=REPO, capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr


def test_platform_folder_is_not_an_importable_package():
    # platform/__init__.py would shadow the standard library's `platform` module for every tool run from here.
    assert not (REPO / "platform" / "__init__.py").exists()
    import platform

    assert Path(platform.__file__).parent != REPO / "platform"
