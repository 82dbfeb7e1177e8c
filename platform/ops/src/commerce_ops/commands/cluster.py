"""`ops cluster up | status | down`: a local Kubernetes control plane on loopback (see commerce_ops.engine.cluster)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table

from commerce_ops.local.layout import LOCAL_DIR_ENV

LocalDir = Annotated[
    Path | None,
    typer.Option(
        "--local-dir", envvar=LOCAL_DIR_ENV, help="State folder. Default: <repo>/.local (cluster/ in it)."
    ),
]


def _cluster(local_dir: Path | None):
    from commerce_ops.engine.cluster import Cluster, ClusterLayout
    from commerce_ops.engine.toolchain import Toolchain

    return Cluster(Toolchain.current(), ClusterLayout.resolve(local_dir), say=typer.echo)


def _fail(exc: Exception) -> None:
    typer.secho(f"error: {exc}", fg="red", err=True)
    raise typer.Exit(1) from None


def register(app: typer.Typer) -> None:
    cluster = typer.Typer(
        help="A local Kubernetes control plane on loopback.\n\netcd, kube-apiserver, controller-manager, scheduler and kwok nodes.",
        no_args_is_help=True,
    )
    app.add_typer(cluster, name="cluster")

    @cluster.command("up")
    def up(local_dir: LocalDir = None) -> None:
        """Start the control plane (built by `ops engine build`) and print how to use it."""
        from commerce_ops.engine.cluster import ClusterError
        from commerce_ops.engine.toolchain import ToolchainError

        control = _cluster(local_dir)
        try:
            control.up()
        except (ClusterError, ToolchainError) as exc:
            _fail(exc)
        typer.echo(f"export KUBECONFIG={control.layout.kubeconfig}")
        typer.echo(f"export PATH={control.chain.bin_dir}:$PATH PULUMI_HOME={control.chain.pulumi_home}")

    @cluster.command("status")
    def status(local_dir: LocalDir = None) -> None:
        """Each component's pid, port and whether it is alive; exit 1 when the cluster is not (fully) up."""
        control = _cluster(local_dir)
        rows = control.status()
        if not rows:
            typer.echo("no local cluster is running (`ops cluster up`)")
            raise typer.Exit(1)
        table = Table(title=f"local cluster: {control.state().server}", title_justify="left")
        for column in ("component", "pid", "port", "state", "log"):
            table.add_column(column)
        for row in rows:
            alive = "[green]running[/]" if row["alive"] else "[red]down[/]"
            table.add_row(row["name"], str(row["pid"]), str(row["port"]), alive, row["log"])
        Console().print(table)
        typer.echo(f"kubeconfig: {control.layout.kubeconfig}")
        raise typer.Exit(0 if all(r["alive"] for r in rows) else 1)

    @cluster.command("down")
    def down(local_dir: LocalDir = None) -> None:
        """Stop every component, free their ports and delete the cluster's data (certificates are kept)."""
        from commerce_ops.engine.cluster import ClusterError

        try:
            _cluster(local_dir).down()
        except ClusterError as exc:
            _fail(exc)
