"""Code rules for services/ and platform/src: banned libraries/APIs, and SQL only ever with bind parameters.

SQL rule, checked on the syntax tree: the statement given to an asyncpg/DB-API call (execute, fetch, ...) is never
an f-string, `%`/`+` concatenation or `.format()` call, and no string that looks like SQL is built that way either.
Values always travel as `$n` parameters. The one exception is identifiers (DDL can't bind them): a formatted
placeholder is allowed when it is a call to an identifier validator (`_ident(...)`) or a name assigned from one.
"""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parents[2]
SOURCE_ROOTS = [REPO_ROOT / "services", REPO_ROOT / "platform" / "src"]
SOURCES = sorted(p for root in SOURCE_ROOTS for p in root.rglob("*.py") if "__pycache__" not in p.parts)
BANNED_MODULES = {"passlib", "pickle", "cPickle", "dill", "databases"}
SQL_CALLS = {"execute", "executemany", "fetch", "fetchrow", "fetchval", "cursor", "prepare", "copy_to_table"}
LOOKS_LIKE_SQL = re.compile(r"\b(SELECT|INSERT\s+INTO|UPDATE|DELETE\s+FROM|CREATE|DROP|ALTER|GRANT)\b")


def rel(path: Path) -> str:
    return str(path.relative_to(REPO_ROOT))


def test_there_is_code_to_check():
    packages = {
        p.relative_to(REPO_ROOT).parts[1] for p in SOURCES if p.relative_to(REPO_ROOT).parts[0] == "services"
    }
    assert {"kit", "users", "inventory", "orders", "payments"} <= packages
    assert len(SOURCES) > 40


def banned_usage(source: str) -> list[str]:
    problems = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            names = [node.module or ""]
        else:
            names = []
        problems += [f"line {node.lineno}: imports {n}" for n in names if n.split(".")[0] in BANNED_MODULES]
        if isinstance(node, ast.Attribute) and node.attr in {"on_event", "add_event_handler"}:
            problems.append(f"line {node.lineno}: {node.attr} (use the lifespan)")
    return problems


def _is_ident_call(node: ast.AST) -> bool:
    return isinstance(node, ast.Call) and getattr(node.func, "attr", getattr(node.func, "id", "")) == "_ident"


def _validated_names(tree: ast.AST) -> set[str]:
    """Names assigned from `_ident(...)` anywhere in the module (e.g. `role = _ident(role)`)."""
    return {
        target.id
        for node in ast.walk(tree)
        if isinstance(node, ast.Assign) and _is_ident_call(node.value)
        for target in node.targets
        if isinstance(target, ast.Name)
    }


def _built_string(node: ast.AST, validated: set[str] = frozenset()) -> bool:
    """An f-string with unvalidated placeholders, `%`/`+` on strings, or `.format()`."""
    if isinstance(node, ast.JoinedStr):
        return any(
            isinstance(v, ast.FormattedValue)
            and not _is_ident_call(v.value)
            and not (isinstance(v.value, ast.Name) and v.value.id in validated)
            for v in node.values
        )
    if isinstance(node, ast.BinOp) and isinstance(node.op, ast.Mod | ast.Add):
        return any(isinstance(side, ast.Constant | ast.JoinedStr) for side in (node.left, node.right))
    return isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and node.func.attr == "format"


def _text(node: ast.AST) -> str:
    return " ".join(
        n.value for n in ast.walk(node) if isinstance(n, ast.Constant) and isinstance(n.value, str)
    )


def unparametrized_sql(source: str) -> list[str]:
    tree = ast.parse(source)
    validated = _validated_names(tree)
    problems = []
    for node in ast.walk(tree):
        if (
            isinstance(node, ast.Call)
            and isinstance(node.func, ast.Attribute)
            and node.func.attr in SQL_CALLS
            and node.args
            and _built_string(node.args[0], validated)
        ):
            problems.append(f"line {node.lineno}: {node.func.attr}() given a formatted statement")
        elif _built_string(node, validated) and LOOKS_LIKE_SQL.search(_text(node)):
            problems.append(f"line {node.lineno}: SQL text built by formatting")
    return problems


@pytest.mark.parametrize("path", SOURCES, ids=rel)
def test_no_banned_libraries_or_startup_events(path):
    assert banned_usage(path.read_text()) == [], rel(path)


@pytest.mark.parametrize("path", SOURCES, ids=rel)
def test_sql_is_parametrized(path):
    assert unparametrized_sql(path.read_text()) == [], rel(path)


@pytest.mark.parametrize(
    "snippet",
    [
        "import passlib.hash",
        "from pickle import loads",
        "import databases",
        "app.on_event('startup')(f)",
    ],
)
def test_the_library_check_catches_banned_usage(snippet):
    assert banned_usage(snippet)


@pytest.mark.parametrize(
    "snippet",
    [
        "await conn.fetch(f'SELECT * FROM t WHERE id = {user_id}')",
        "await conn.execute('DELETE FROM t WHERE id = %s' % user_id)",
        "await pool.fetchrow('SELECT * FROM t WHERE name = ' + name)",
        "await conn.fetchval('SELECT {} FROM t'.format(column))",
        "query = f'UPDATE t SET a = {value}'",
    ],
)
def test_the_sql_check_catches_formatted_statements(snippet):
    assert unparametrized_sql(snippet)


@pytest.mark.parametrize(
    "snippet",
    [
        "await conn.fetch('SELECT * FROM t WHERE id = $1', user_id)",
        "name = _ident(name)\nsql = f'DROP DATABASE {name}'",
        "sql = f'CREATE DATABASE {_ident(db)}'",
        "message = f'user {name} created'",
    ],
)
def test_the_sql_check_accepts_bind_parameters_and_validated_identifiers(snippet):
    assert unparametrized_sql(snippet) == []


def test_the_lock_file_has_no_passlib_or_databases():
    locked = set(re.findall(r'^name = "([^"]+)"$', (REPO_ROOT / "uv.lock").read_text(), re.MULTILINE))
    assert len(locked) > 50
    assert not {"passlib", "databases"} & locked
