"""BENCHMARKS.md is shared: `ops bench` rewrites only the services section and keeps the render section as it is.
(Lives with the chaos suite, the other half of issue 7; the bench itself is measured by running `ops bench`.)"""

from __future__ import annotations

from pathlib import Path

import pytest

from commerce_ops.bench.report import ReportError, write_section
from commerce_ops.bench.targets import quantity_bytes

RENDER = "<!-- render:begin -->\n## Render\n\n| a | b |\n|---|---|\n| 1 | 2 |\n<!-- render:end -->\n"


def test_services_section_is_appended_then_replaced_and_render_section_kept(tmp_path: Path) -> None:
    target = tmp_path / "BENCHMARKS.md"
    target.write_text("# Benchmarks\n\n" + RENDER)
    write_section(target, "first run")
    write_section(target, "second run")
    text = target.read_text()
    assert text.startswith("# Benchmarks\n\n" + RENDER)
    assert text.count("<!-- services:begin -->") == 1
    assert "second run" in text and "first run" not in text


def test_missing_file_is_created_with_both_sections(tmp_path: Path) -> None:
    target = tmp_path / "BENCHMARKS.md"
    write_section(target, "figures")
    text = target.read_text()
    assert "<!-- render:begin -->\n<!-- render:end -->" in text
    assert "<!-- services:begin -->\nfigures\n<!-- services:end -->" in text


def test_damaged_markers_are_refused_not_guessed(tmp_path: Path) -> None:
    target = tmp_path / "BENCHMARKS.md"
    target.write_text("<!-- services:begin -->\n<!-- services:begin -->\n<!-- services:end -->\n")
    with pytest.raises(ReportError, match="exactly one"):
        write_section(target, "figures")


@pytest.mark.parametrize(
    ("quantity", "expected"), [("384Mi", 384 * 2**20), ("1Gi", 2**30), ("500M", 5 * 10**8)]
)
def test_memory_requests_are_read_as_kubernetes_quantities(quantity: str, expected: int) -> None:
    assert quantity_bytes(quantity) == expected
