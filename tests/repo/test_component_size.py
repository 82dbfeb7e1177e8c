"""The Pulumi components stay readable: no function (or method) in components/ or program.py over 60 lines,
counted from its `def` line to its last line (decorators excluded). ruff's PLR0915 counts statements, which a
single 200-line constructor call passes; this counts what a reader scrolls through."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

import commerce_platform.components

MAX_LINES = 60
COMPONENTS = Path(commerce_platform.components.__file__).parent
FILES = sorted(COMPONENTS.glob("*.py")) + [COMPONENTS.parent / "program.py"]


def too_long(source: str, limit: int = MAX_LINES) -> list[tuple[str, int]]:
    """(qualified name, lines) of every function in `source` longer than `limit` lines."""
    found = []

    def visit(node: ast.AST, prefix: str) -> None:
        for child in ast.iter_child_nodes(node):
            if isinstance(child, ast.FunctionDef | ast.AsyncFunctionDef):
                lines = child.end_lineno - child.lineno + 1
                if lines > limit:
                    found.append((f"{prefix}{child.name}", lines))
                visit(child, f"{prefix}{child.name}.")
            elif isinstance(child, ast.ClassDef):
                visit(child, f"{prefix}{child.name}.")

    visit(ast.parse(source), "")
    return found


def test_the_files_are_found():
    assert {"service.py", "datastores.py", "baseline.py", "program.py"} <= {f.name for f in FILES}


@pytest.mark.parametrize("path", FILES, ids=lambda p: p.name)
def test_no_function_over_60_lines(path: Path):
    offenders = too_long(path.read_text())
    assert not offenders, f"{path.name}: split into builders returning manifests: " + ", ".join(
        f"{name} ({lines} lines)" for name, lines in offenders
    )


def test_the_count_catches_a_long_method():
    body = "\n".join(f"        x{i} = {i}" for i in range(MAX_LINES))  # def line + 60 = 61 lines
    source = f"class C:\n    def __init__(self):\n{body}\n\n\ndef short():\n    return 1\n"
    assert too_long(source) == [("C.__init__", MAX_LINES + 1)]
    assert too_long(source, limit=MAX_LINES + 1) == []
