"""`ops`: the repo's one CLI.

Each module in `commerce_platform.commands` adds its own sub-commands through `register(app)`, so concerns stay
in their own files and this one never grows. The command list is shown in the order a user needs them
(`COMMAND_ORDER`; a command not named there comes after those, alphabetically).
"""

from __future__ import annotations

import importlib
import pkgutil
from importlib.metadata import PackageNotFoundError, version
from typing import Annotated

import typer
from typer.core import TyperGroup

from commerce_platform import commands

COMMAND_ORDER = (
    "dev",
    "test",
    "render",
    "policy",
    "secrets",
    "diff",
    "promote",
    "rollback",
    "bench",
    "chaos",
)


class _OrderedGroup(TyperGroup):
    def list_commands(self, ctx) -> list[str]:
        names = super().list_commands(ctx)
        rank = {name: i for i, name in enumerate(COMMAND_ORDER)}
        return sorted(names, key=lambda name: (rank.get(name, len(rank)), name))


app = typer.Typer(
    name="ops",
    cls=_OrderedGroup,
    help="commerce-platform: run the platform locally, test, render, check, preview and promote it.",
    no_args_is_help=True,
    # Plain click-style help: flags without a `<bool>` type column, and it wraps to the terminal (80 columns).
    rich_markup_mode=None,
    context_settings={"help_option_names": ["-h", "--help"]},
    pretty_exceptions_enable=False,
)


def _version(value: bool) -> None:
    if value:
        try:
            typer.echo(f"ops {version('commerce-platform')}")
        except PackageNotFoundError:  # running from a source tree that was never installed
            typer.echo("ops (not installed)")
        raise typer.Exit()


@app.callback()
def main(
    _version: Annotated[
        bool,
        typer.Option("--version", callback=_version, is_eager=True, help="Print the version and exit."),
    ] = False,
) -> None:
    """commerce-platform: run the platform locally, test, render, check, preview and promote it."""


for _module in sorted(m.name for m in pkgutil.iter_modules(commands.__path__)):
    importlib.import_module(f"{commands.__name__}.{_module}").register(app)

# Sub-command groups (`ops dev …`) are Typer apps of their own: they get the same plain help.
for _group in app.registered_groups:
    if _group.typer_instance is not None:
        _group.typer_instance.rich_markup_mode = app.rich_markup_mode
