"""The `ops` command line itself, as a real subprocess: -h and --version, help that reads well (no `<bool>`
column, commands in the order a user needs them), output that fits 80 columns, `ops secrets`."""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from commerce_ops.cli import COMMAND_ORDER
from commerce_ops.paths import repo_root
from commerce_platform.environments import load_environment

# Imported at collection, before any test's event loop comes and goes: it imports pulumi, whose grpc asks
# asyncio for the current loop at import time (no longer imported as a side effect of importing the CLI).
from commerce_platform.secrets import required_secrets

pytestmark = pytest.mark.heavy(30)

OPS = str(Path(sys.executable).with_name("ops"))


def run(*args: str, columns: int = 80, env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
    import os

    return subprocess.run(
        [OPS, *args],
        capture_output=True,
        text=True,
        timeout=120,
        env={**os.environ, "COLUMNS": str(columns), **(env or {})},
    )


def _commands(help_text: str) -> list[str]:
    section = help_text.split("Commands:\n", 1)[1]
    return [line.split()[0] for line in section.splitlines() if line.startswith("  ") and line.split()]


def test_version_and_short_help():
    version = run("--version")
    assert version.returncode == 0
    assert re.fullmatch(r"ops \d+\.\d+\.\d+\n", version.stdout), version.stdout
    short, long = run("-h"), run("--help")
    assert short.returncode == 0 and short.stdout == long.stdout
    assert "--install-completion" in short.stdout  # Typer's shell completion


def test_commands_are_listed_in_the_order_a_user_needs_them():
    listed = _commands(run("-h").stdout)
    known = [name for name in listed if name in COMMAND_ORDER]
    assert known == [name for name in COMMAND_ORDER if name in listed]
    assert listed[:2] == ["dev", "test"]
    assert _commands(run("dev", "-h").stdout) == [
        "up",
        "down",
        "status",
        "restart",
        "logs",
        "psql",
        "top",
        "trace",
    ]


def help_page(*args: str) -> str:
    """`ops ARGS -h` rendered in this process by the console script's own click command, as wide as $COLUMNS
    says (the 25 pages as subprocesses cost ~15 s of start-up; `ops -h` itself runs as a subprocess too)."""
    import contextlib
    import io

    import typer

    from commerce_ops.cli import app

    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        code = typer.main.get_command(app).main([*args, "-h"], prog_name="ops", standalone_mode=False)
    assert code in (0, None), out.getvalue()
    return out.getvalue()


def test_every_help_reads_well_at_80_columns(monkeypatch):
    """No `<bool>` for flags, no line wider than the terminal, no first line cut short with `...`."""
    monkeypatch.setenv("COLUMNS", "80")
    pages = {"ops": run("-h").stdout}
    assert help_page() == pages["ops"]  # in-process pages are what the console script prints
    for name in _commands(pages["ops"]):
        pages[name] = help_page(name)
    for name in _commands(pages["dev"]):
        pages[f"dev {name}"] = help_page("dev", name)
    for page, text in pages.items():
        assert text.startswith("Usage: ops"), (page, text)
        assert "<bool>" not in text, page
        assert max(len(line) for line in text.splitlines()) <= 80, page
    for line in pages["ops"].split("Commands:\n", 1)[1].splitlines():
        assert not line.endswith("..."), line
    assert "pytest" in pages["test"].split("Options:")[0]
    assert pages["test"].startswith("Usage: ops test [PYTEST ARGS]...")


def test_policy_rules_fit_80_columns_with_whole_headers():
    listed = run("policy", "--list-rules")
    assert listed.returncode == 0
    lines = listed.stdout.splitlines()
    assert max(len(line) for line in lines) <= 80
    header = next(line for line in lines if "Rule" in line)
    assert header.split() == ["Rule", "Severity", "Enforcement", "Envs", "Scope"]
    from commerce_platform.policy import RULES

    for rule in RULES:
        assert re.search(rf"^\s+{re.escape(rule.id)}\s+{rule.severity.value}\s", listed.stdout, re.M), rule.id
    wide = run("policy", "--list-rules", columns=200).stdout.splitlines()
    assert next(line for line in wide if "Rule" in line).split()[-1] == "Description"


def test_render_prints_outputs_as_lines_not_a_dict(tmp_path):
    rendered = run("render", "dev", "--out", str(tmp_path / "dev"))
    assert rendered.returncode == 0, rendered.stderr
    assert "{'" not in rendered.stdout
    lines = rendered.stdout.splitlines()
    start = lines.index("images:")
    assert [line.split(":")[0].strip() for line in lines[start + 1 : start + 5]] == sorted(
        ["users", "inventory", "orders", "payments"]
    )
    assert "namespace: commerce-dev" in lines


@pytest.fixture
def sandbox(tmp_path: Path) -> Path:
    """The files `ops secrets` reads, to change on purpose."""
    root = repo_root()
    shutil.copytree(root / "environments", tmp_path / "environments")
    for stack_file in root.glob("Pulumi*.yaml"):
        shutil.copy(stack_file, tmp_path / stack_file.name)
    (tmp_path / "services").mkdir()
    return tmp_path


def test_secrets_lists_what_prod_needs_and_the_command_for_each_missing_one(sandbox):
    result = run("secrets", "prod", columns=120, env={"COMMERCE_REPO_ROOT": str(sandbox)})
    assert result.returncode == 1
    for key in ("jwtPrivateKey", "adminPassword", "ordersDatabaseUrl", "redisUrl"):
        assert re.search(rf"{key}\s+│\s+no\s", result.stdout), (key, result.stdout)
        assert f"run: pulumi config set --secret {key} --stack prod <value>" in result.stderr
    assert "postgresPassword" not in result.stdout  # prod's Postgres is external: no in-cluster password

    # Encrypted values in the stack file count as set (and are never shown).
    needed = [s.key for s in required_secrets(load_environment("prod", sandbox), _services())]
    stack_file = sandbox / "Pulumi.prod.yaml"
    secure = "".join(f"  commerce-platform:{key}:\n    secure: v1:c2VjcmV0:AAAA{key}\n" for key in needed[1:])
    stack_file.write_text(stack_file.read_text() + secure)
    result = run("secrets", "prod", columns=120, env={"COMMERCE_REPO_ROOT": str(sandbox)})
    assert result.returncode == 1
    assert result.stderr.strip().splitlines() == [
        f"stack 'prod' is missing the secret '{needed[0]}' (RS256 private key (PEM) the token issuer signs "
        f"with); run: pulumi config set --secret {needed[0]} --stack prod <value>"
    ]
    assert "AAAA" not in result.stdout
    stack_file.write_text(stack_file.read_text() + f"  commerce-platform:{needed[0]}:\n    secure: v1:AAAA\n")
    done = run("secrets", "prod", columns=120, env={"COMMERCE_REPO_ROOT": str(sandbox)})
    assert done.returncode == 0, done.stderr
    assert f"all {len(needed)} secrets of prod are set in Pulumi.prod.yaml" in done.stdout


def test_secrets_of_an_unknown_stack_is_one_line():
    result = run("secrets", "stagin")
    assert result.returncode == 2
    assert (
        result.stderr.strip().splitlines()[0].startswith("error: unknown environment 'stagin'; allowed: dev")
    )
    assert "Traceback" not in result.stderr


def _services():
    from commerce_platform import catalogue

    return catalogue.SERVICES


def test_help_imports_no_command_module_nor_the_heavy_libraries():
    """`ops --help` lists the commands from `cli.COMMANDS`: none of their modules is imported (checked in a
    fresh interpreter, by what is in sys.modules afterwards; not timed)."""
    probe = (
        "import sys\n"
        "from commerce_ops.cli import app\n"
        "try:\n"
        "    app(['--help'], prog_name='ops')\n"
        "except SystemExit:\n"
        "    pass\n"
        "print(' '.join(sorted(sys.modules)))\n"
    )
    done = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    loaded = set(done.stdout.split("\n")[-2].split())
    heavy = (
        "pydantic",
        "pydantic_settings",
        "rich",
        "pulumi",
        "yaml",
        "httpx",
        "asyncpg",
        "importlib.metadata",
    )
    assert not {name for name in loaded if name.split(".")[0] in heavy or name in heavy}
    assert not {name for name in loaded if name.startswith("commerce_ops.commands")}
    assert "commerce_platform.catalogue" not in loaded


def test_the_command_table_matches_the_command_modules():
    """Every module under commands/ is in the table, and each command's listed help is its own first line."""
    import pkgutil

    from commerce_ops import cli, commands

    listed = {module for command in cli.COMMANDS for module in command.modules}
    assert listed == {m.name for m in pkgutil.iter_modules(commands.__path__)}
    for command in cli.COMMANDS:
        own = cli.load_command(command.name).help.strip().splitlines()[0]
        assert own == command.help, command.name
