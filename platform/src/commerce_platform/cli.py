"""`ops`: the repo's one CLI.

Each module in `commerce_platform.commands` adds its own sub-commands through `register(app)`, so concerns stay
in their own files and this one never grows.
"""

from __future__ import annotations

import importlib
import pkgutil

import typer

from commerce_platform import commands

app = typer.Typer(
    name="ops",
    help="commerce-platform: render, check, preview, promote and run the platform.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)

for _module in sorted(m.name for m in pkgutil.iter_modules(commands.__path__)):
    importlib.import_module(f"{commands.__name__}.{_module}").register(app)
