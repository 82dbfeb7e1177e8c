"""`ops`: the repo's one CLI.

Each module in `commerce_ops.commands` adds its own sub-commands through `register(app)`, so concerns stay
in their own files. `COMMANDS` names them, in the order a user needs them, with the one-line help `ops --help`
shows: a command's module is imported only when that command runs (or its own help is asked for), so `ops
--help` and shell completion start without the policy rules, Pulumi, pydantic or rich. tests/cli checks that
the table matches the modules (names, first help lines) and that `ops --help` imports none of them.
"""

from __future__ import annotations

import importlib
from collections.abc import Iterator, MutableMapping
from dataclasses import dataclass
from typing import Annotated

import typer
from typer import _click as click  # typer's own click (what its groups and contexts are)
from typer.core import TyperGroup


@dataclass(frozen=True)
class Command:
    name: str
    modules: tuple[str, ...]  # under commerce_ops.commands, registered in this order
    help: str  # the first line of the command's own help


COMMANDS = (
    Command("dev", ("dev", "dev_observe"), "Run the whole platform on this machine."),
    Command("test", ("test",), "Run the tests (extra arguments go to pytest)."),
    Command("render", ("render",), "Render an environment offline."),
    Command("policy", ("policy",), "Check an environment against the policy rules."),
    Command("secrets", ("secrets",), "List the secrets a stack needs, and which are set."),
    Command("diff", ("diff",), "Preview what a deploy of this change would do."),
    Command("promote", ("promote",), "Promote FROM's images to TO through a pull request."),
    Command("rollback", ("promote",), "Restore ENV's releases as of COMMIT through a pull request."),
    Command("bench", ("bench",), "Benchmark the services; update BENCHMARKS.md."),
    Command("chaos", ("chaos",), "Fault injection: do the invariants hold?"),
    Command("cluster", ("cluster",), "A local Kubernetes control plane on loopback."),
    Command("engine", ("engine",), "The pinned Pulumi engine and control plane binaries."),
)
COMMAND_ORDER = tuple(c.name for c in COMMANDS)
_BY_NAME = {c.name: c for c in COMMANDS}


def load_command(name: str) -> click.Command:
    """Imports the command's modules and builds its click command (a group for `dev`, `cluster`, `engine`)."""
    holder = typer.Typer(rich_markup_mode=None)
    for module in _BY_NAME[name].modules:
        importlib.import_module(f"commerce_ops.commands.{module}").register(holder)
    # Sub-command groups (`ops dev …`) are Typer apps of their own: they get the same plain help.
    for group in holder.registered_groups:
        if group.typer_instance is not None:
            group.typer_instance.rich_markup_mode = None
    return typer.main.get_group(holder).commands[name]


class _LazyCommands(MutableMapping):
    """The group's `commands` mapping: every name of `COMMANDS` is in it, and its command is built on first
    lookup (so code that reads `group.commands[name]`, like click's own, works unchanged)."""

    def __init__(self, loaded: dict[str, click.Command]) -> None:
        self._loaded = dict(loaded)

    def __getitem__(self, name: str) -> click.Command:
        if name not in self._loaded:
            if name not in _BY_NAME:
                raise KeyError(name)
            self._loaded[name] = load_command(name)
        return self._loaded[name]

    def __contains__(self, name: object) -> bool:
        return name in _BY_NAME or name in self._loaded

    def __setitem__(self, name: str, command: click.Command) -> None:
        self._loaded[name] = command

    def __delitem__(self, name: str) -> None:
        del self._loaded[name]

    def __iter__(self) -> Iterator[str]:
        return iter(dict.fromkeys([*COMMAND_ORDER, *self._loaded]))

    def __len__(self) -> int:
        return len(set(COMMAND_ORDER) | set(self._loaded))


class _LazyGroup(TyperGroup):
    """The commands of `COMMANDS`, in that order, each built on first use."""

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.commands = _LazyCommands(self.commands)

    def list_commands(self, ctx: click.Context) -> list[str]:
        return list(self.commands)

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        return self.commands[cmd_name] if cmd_name in self.commands else None

    def format_commands(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        """The command list from the table: listing them imports none of them."""
        with formatter.section("Commands"):
            formatter.write_dl([(c.name, c.help) for c in COMMANDS])


app = typer.Typer(
    name="ops",
    cls=_LazyGroup,
    help="commerce-platform: run the platform locally, test, render, check, preview and promote it.",
    no_args_is_help=True,
    # Plain click-style help: flags without a `<bool>` type column, and it wraps to the terminal (80 columns).
    rich_markup_mode=None,
    context_settings={"help_option_names": ["-h", "--help"]},
    pretty_exceptions_enable=False,
)


def _version(value: bool) -> None:
    if value:
        from importlib.metadata import PackageNotFoundError, version

        try:
            typer.echo(f"ops {version('commerce-ops')}")
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
