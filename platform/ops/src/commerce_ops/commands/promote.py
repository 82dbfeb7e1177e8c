"""`ops promote <from> <to>`: open the pull request that makes <to> run what <from> runs; `ops rollback <env>
<commit>`: the one that makes <env> run what it ran at <commit>."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

# The options promote and rollback share.
Services = Annotated[
    list[str] | None, typer.Option("--service", help="Only this service (repeatable; default: all).")
]
Push = Annotated[bool, typer.Option("--push", help="Push the branch and open the pull request.")]


def register(app: typer.Typer) -> None:
    @app.command("promote")
    def promote_command(
        source: Annotated[str, typer.Argument(metavar="FROM", help="Environment whose images to promote.")],
        target: Annotated[str, typer.Argument(metavar="TO", help="Environment whose file is rewritten.")],
        outputs: Annotated[
            Path | None,
            typer.Option(help="JSON of `pulumi stack output --json` for FROM (default: ask pulumi)."),
        ] = None,
        service: Services = None,
        include_sizing: Annotated[
            bool, typer.Option("--include-sizing", help="Also copy autoscaling and resources from FROM.")
        ] = False,
        copy_images: Annotated[
            bool,
            typer.Option(
                "--copy-images",
                help="Copy images outside TO's image_repository into it by digest (crane copy) first.",
            ),
        ] = False,
        push: Push = False,
    ) -> None:
        """Promote FROM's images to TO through a pull request.

        Rewrites TO's image digests from FROM on a promote/ branch in one commit, and prints the preview.
        """
        from commerce_ops.promote.flow import promote

        _run(
            lambda root: promote(
                source,
                target,
                root,
                outputs=outputs,
                services=service or (),
                include_sizing=include_sizing,
                copy=copy_images,
            ),
            push,
            "promote",
        )

    @app.command("rollback")
    def rollback_command(
        env: Annotated[
            str, typer.Argument(metavar="ENV", help="Environment to roll back (its file is rewritten).")
        ],
        commit: Annotated[
            str,
            typer.Argument(metavar="COMMIT", help="Commit whose environments/ENV.yaml releases to restore."),
        ],
        service: Services = None,
        push: Push = False,
    ) -> None:
        """Restore ENV's releases as of COMMIT through a pull request.

        The releases pinned in environments/ENV.yaml at COMMIT, on a rollback/ branch in one commit, with the same
        checks and refusals as promote (digests, registry, policy) and the preview; merging it deploys.
        """
        from commerce_ops.promote.flow import rollback

        _run(lambda root: rollback(env, commit, root, services=service or ()), push, "rollback")


def _run(make, push: bool, command: str) -> None:
    """Make the promotion (or rollback) commit, print it and its preview, push it; refusals are one line."""
    from commerce_ops.paths import repo_root
    from commerce_ops.preview.baseline import PreviewError
    from commerce_ops.promote import PromotionRefused
    from commerce_ops.promote.flow import preview_markdown, push_and_open_pr, shell_command

    try:
        root = repo_root()
        done = make(root)
        typer.echo(f"branch {done.branch}, commit {done.commit[:7]}: {done.title}")
        for change in done.changes:
            typer.echo(f"  {change.service}: {change.old} → {change.new}")
        for copied in done.copies:
            typer.echo(f"  copied {copied.source} → {copied.target}")
        typer.echo("")
        typer.echo(preview_markdown(done).rstrip("\n"))
        if push:
            command, opened = push_and_open_pr(done, root)
            if not opened:
                typer.echo(f"\ngh is not installed; open the pull request with:\n  {shell_command(command)}")
    except PreviewError as exc:
        typer.echo(f"ops {command}: refused: {exc}", err=True)
        raise typer.Exit(1) from None
    except PromotionRefused as exc:
        typer.echo(f"ops {command}: refused: {exc}", err=True)
        raise typer.Exit(exc.exit_code) from None
