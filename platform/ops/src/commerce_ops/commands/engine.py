"""`ops engine build | path`: the pinned Pulumi engine and control-plane binaries, built once into a cache."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Annotated

import typer

from commerce_ops.local.layout import LOCAL_DIR_ENV


def register(app: typer.Typer) -> None:
    engine = typer.Typer(
        help="The pinned Pulumi engine and control plane binaries.\n\nBuilt with go from platform/engine into a cache.",
        no_args_is_help=True,
    )
    app.add_typer(engine, name="engine")

    @engine.command("build")
    def build() -> None:
        """Build the toolchain into the cache (a no-op when it is warm)."""
        from commerce_ops.engine.toolchain import ToolchainError
        from commerce_ops.engine.toolchain import build as build_toolchain

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
        from commerce_ops.engine.toolchain import Toolchain

        typer.echo(Toolchain.current().bin_dir)

    @engine.command("stack")
    def stack(
        name: Annotated[str, typer.Argument(help="dev or pr-<N>")] = "dev",
        local_dir: Annotated[
            Path | None,
            typer.Option("--local-dir", envvar=LOCAL_DIR_ENV, help="State folder (default .local)."),
        ] = None,
    ) -> None:
        """Ready a stack for the local cluster: file backend and passphrase under <local dir>/pulumi, images pinned
        by digest in environments/dev.yaml (kwok pulls nothing), every required secret generated and set."""
        from commerce_ops.engine.cluster import ClusterLayout
        from commerce_ops.engine.stack import EngineError, Workspace, pin_images
        from commerce_ops.engine.toolchain import Toolchain, system_pulumi
        from commerce_ops.local.layout import LocalLayout
        from commerce_ops.paths import repo_root
        from commerce_platform.environments import EnvironmentConfigError

        chain = Toolchain.current()
        if not chain.tool("pulumi").is_file():
            if system_pulumi() is None:
                typer.secho(
                    "error: no pulumi CLI: run `ops engine build` (or install pulumi)", fg="red", err=True
                )
                raise typer.Exit(1)
            chain = None
        layout = LocalLayout.resolve(local_dir)
        space = Workspace(
            repo_root(), layout.root / "pulumi", ClusterLayout.resolve(local_dir).kubeconfig, chain
        )
        try:
            pinned = pin_images(space.root, "dev")
            created = space.init_stack(name)
        except (EngineError, EnvironmentConfigError) as exc:
            typer.secho(f"error: {exc}", fg="red", err=True)
            raise typer.Exit(1) from None
        if pinned:
            typer.echo(
                f"environments/dev.yaml: pinned digests for {', '.join(pinned)} (git checkout it to undo)"
            )
        typer.echo(
            f"stack {name}: {len(created)} secrets generated and set"
            + (f" ({', '.join(created)})" if created else "")
        )
        env = space.env()
        for key in ("PULUMI_BACKEND_URL", "PULUMI_CONFIG_PASSPHRASE_FILE", "KUBECONFIG"):
            typer.echo(f"export {key}={env[key]}")
        if chain is not None:
            typer.echo(
                f"export PATH={chain.bin_dir}:$PATH PULUMI_HOME={chain.pulumi_home} PULUMI_SKIP_UPDATE_CHECK=true"
            )
