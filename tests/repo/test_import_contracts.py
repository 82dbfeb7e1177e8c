"""Dependencies point one way: tooling (commerce_ops) → program (commerce_platform) → services → service kit.

The contracts live in pyproject.toml (`[tool.importlinter]`) and are checked here by `lint-imports` itself, so a
broken one fails with import-linter's own report: which contract, and the import chain that breaks it. No module
of the program or the tooling is in an import cycle (grimp, the graph library import-linter is built on; its
`acyclic_siblings` contract sees cycles between packages, this sees every module, function-level imports too).
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import grimp
import pytest

REPO = Path(__file__).resolve().parents[2]
LINT_IMPORTS = Path(sys.executable).with_name("lint-imports")
SOURCES = [REPO / "platform/src", REPO / "platform/ops/src", *sorted((REPO / "services").glob("*/src"))]


def lint_imports(*sources: Path) -> subprocess.CompletedProcess[str]:
    """`lint-imports` over the repo's contracts; `sources` come first on the path (a modified copy)."""
    path = os.pathsep.join(str(p) for p in [*sources, *SOURCES])
    return subprocess.run(
        [str(LINT_IMPORTS), "--no-cache", "--no-logo"],
        cwd=REPO,
        env=os.environ | {"PYTHONPATH": path},
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_the_import_contracts_hold():
    run = lint_imports()
    assert run.returncode == 0, run.stdout + run.stderr
    assert "0 broken" in run.stdout


def test_a_program_module_importing_the_tooling_or_a_cycle_breaks_the_contracts(tmp_path):
    program = tmp_path / "commerce_platform"
    shutil.copytree(
        REPO / "platform/src/commerce_platform", program, ignore=shutil.ignore_patterns("__pycache__")
    )
    environments = program / "environments.py"
    environments.write_text(
        environments.read_text()
        + "\n\ndef _late():\n    from commerce_ops import paths\n    from commerce_platform import program\n"
    )
    run = lint_imports(tmp_path)
    assert run.returncode == 1, run.stdout + run.stderr
    report = run.stdout.split("Broken contracts", 1)[-1]
    assert "commerce_platform.environments -> commerce_ops.paths" in report
    assert "No cycles are allowed in commerce_platform" in report


@pytest.mark.parametrize("package", ["commerce_platform", "commerce_ops"])
def test_no_module_is_in_an_import_cycle(package):
    graph = grimp.build_graph(package, cache_dir=None)
    cycles = []
    for module in sorted(graph.modules):
        for imported in sorted(graph.find_modules_directly_imported_by(module)):
            back = graph.find_shortest_chain(importer=imported, imported=module)
            if back:
                cycles.append(" -> ".join((module, *back)))
                break
    assert not cycles, "import cycles:\n" + "\n".join(cycles)
