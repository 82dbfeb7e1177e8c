"""`ops engine build | path`: the pinned Pulumi engine and control-plane binaries, built once into a cache."""

from __future__ import annotations

import time

import typer


def register(app: typer.Typer) -> None:
    engine = typer.Typer(
        help="The pinned Pulumi engine and local control plane binaries (built with go from platform/engine).",
        no_args_is_help=True,
    )
    app.add_typer(engine, name="engine")

    @engine.command("build")
    def build() -> None:
        """Build the toolchain into the cache (a no-op when it is warm)."""
        from commerce_platform.engine.toolchain import ToolchainError
        from commerce_platform.engine.toolchain import build as build_toolchain

        started = time.perf_counter()
        try:
            chain, built = build_toolchain(say=lambda line: typer.echo(f"  {line}"))
        except ToolchainError as exc:
            typer.secho(f"error: {exc}", fg="red", err=True)
            raise typer.Exit(1) from None
        elapsed = time.perf_counter() - started
        if built:
            typer.echo(f"engine toolchain built in {elapsed:.0f}s: {chain.bin_dir}")
        else:
            typer.echo(f"engine toolchain is warm (nothing to build): {chain.bin_dir}")

    @engine.command("path")
    def path() -> None:
        """Print the toolchain's bin folder (for PATH), whether or not it is built."""
        from commerce_platform.engine.toolchain import Toolchain

        typer.echo(Toolchain.current().bin_dir)
