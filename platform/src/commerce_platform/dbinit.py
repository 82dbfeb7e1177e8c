"""Idempotent SQL that gives each service its own database and login.

One source for both the cluster (the Postgres init Job runs these statements through psql) and the local
runtime (`ops dev up` runs them through asyncpg), so both create things the same way.
"""

from __future__ import annotations

import re

_IDENT = re.compile(r"^[a-z_][a-z0-9_]{0,62}$")


def _ident(name: str) -> str:
    if not _IDENT.match(name):
        raise ValueError(f"not a safe SQL identifier: {name!r}")
    return name


def role_statement(role: str) -> str:
    """Create the login role if missing. The password is set separately (see `password_statement`)."""
    role = _ident(role)
    return (
        "DO $$ BEGIN "
        f"IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = '{role}') THEN CREATE ROLE {role} LOGIN; END IF; "
        "END $$;"
    )


def password_statement(role: str) -> str:
    """Set the role's password from the psql variable :'password' (never interpolated into the SQL text)."""
    return f"ALTER ROLE {_ident(role)} WITH LOGIN PASSWORD :'password';"


def database_exists_query() -> str:
    return "SELECT 1 FROM pg_database WHERE datname = $1"


def create_database_statement(database: str, owner: str) -> str:
    # CREATE DATABASE cannot run inside a DO block or transaction, so callers check existence first.
    return f"CREATE DATABASE {_ident(database)} OWNER {_ident(owner)}"


def psql_script(databases: list[str]) -> str:
    """The init Job's script: for each service, role + password (from env) + database, all idempotent.

    Passwords come from env vars `<DB>_PASSWORD` inside the Job's container, via psql's \\getenv, so they never
    appear in the manifest or the script.
    """
    lines = ["\\set ON_ERROR_STOP on"]
    for db in databases:
        db = _ident(db)
        lines += [
            role_statement(db),
            f"\\getenv password {db.upper()}_PASSWORD",
            password_statement(db),
            # db passed _ident() above: a lowercase identifier, so it is safe inside the quoted literal.
            f"SELECT 'CREATE DATABASE {db} OWNER {db}' WHERE NOT EXISTS "  # noqa: S608
            f"(SELECT FROM pg_database WHERE datname = '{db}') \\gexec",
        ]
    return "\n".join(lines) + "\n"
