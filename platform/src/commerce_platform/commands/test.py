"""`ops test`: every test in the repo, in three pytest processes.

Pulumi's mock monitor owns its event loop, and the service suites run their own asyncio loops, so the Pulumi-based
suites (platform, policy, preview, promote) get a process of their own; so does the engine tier (tests/engine: the
real Pulumi engine against a local control plane, whose session fixtures build the toolchain and start the cluster).
Extra arguments run one plain pytest instead.
"""

from __future__ import annotations

import subprocess
import sys
import tempfile
import xml.etree.ElementTree as ET
from pathlib import Path

import typer

from commerce_platform.paths import repo_root

PULUMI_SUITES = ("tests/platform", "tests/policy", "tests/preview", "tests/promote")
ENGINE_SUITES = ("tests/engine",)


def suites(root: Path) -> dict[str, list[str]]:
    """The pytest runs: the Pulumi-based folders, the engine tier, and every other folder under tests/ (so none is
    forgotten)."""
    folders = sorted(p.relative_to(root).as_posix() for p in (root / "tests").iterdir() if p.is_dir())
    folders = [f for f in folders if not f.rsplit("/", 1)[-1].startswith((".", "_"))]
    return {
        "pulumi": [f for f in folders if f in PULUMI_SUITES],
        "engine": [f for f in folders if f in ENGINE_SUITES],
        "services": [f for f in folders if f not in PULUMI_SUITES + ENGINE_SUITES],
    }


def _counts(junit: Path) -> tuple[int, int, int]:
    """(passed, failed, skipped) from a junit XML report."""
    if not junit.exists():
        return 0, 0, 0
    root = ET.parse(junit).getroot()
    suites = [root] if root.tag == "testsuite" else list(root)
    total = sum(int(s.get("tests", 0)) for s in suites)
    failed = sum(int(s.get("failures", 0)) + int(s.get("errors", 0)) for s in suites)
    skipped = sum(int(s.get("skipped", 0)) for s in suites)
    return total - failed - skipped, failed, skipped


def register(app: typer.Typer) -> None:
    @app.command("test", context_settings={"allow_extra_args": True, "ignore_unknown_options": True})
    def test(ctx: typer.Context) -> None:
        """Run every test (or pass pytest arguments to run a subset)."""
        root = repo_root()
        pytest = [sys.executable, "-m", "pytest"]
        if ctx.args:
            raise typer.Exit(subprocess.call([*pytest, *ctx.args], cwd=root))
        passed = failed = skipped = 0
        codes = []
        with tempfile.TemporaryDirectory() as tmp:
            for name, present in suites(root).items():
                if not present:
                    continue  # a plain `pytest` would run every folder
                junit = Path(tmp) / f"{name}.xml"
                typer.secho(f"== ops test: {name} suites ({', '.join(present)})", bold=True)
                codes.append(subprocess.call([*pytest, *present, f"--junitxml={junit}"], cwd=root))
                p, f, s = _counts(junit)
                passed, failed, skipped = passed + p, failed + f, skipped + s
        # One closing line for the whole run, whatever the number of pytest processes.
        typer.echo(f"total: {passed} passed, {failed} failed, {skipped} skipped")
        # pytest's 5 means "no tests collected": a suite that runs nothing is a failure here.
        raise typer.Exit(0 if all(c == 0 for c in codes) and passed > 0 else 1)
