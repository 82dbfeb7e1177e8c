"""`ops secrets <stack>`: which config secrets the stack needs and which Pulumi.<stack>.yaml has, offline."""

from __future__ import annotations

from typing import Annotated

import typer


def register(app: typer.Typer) -> None:
    @app.command("secrets")
    def secrets(
        stack: Annotated[str, typer.Argument(help="dev, prod (any environment), or pr-<N>.")],
    ) -> None:
        """List the secrets a stack needs, and which are set.

        Offline: reads environments/<stack>.yaml (what the program will require) and Pulumi.<stack>.yaml (which
        keys are stored encrypted there); no value is decrypted or shown. Exit 1 when any is missing, with the
        `pulumi config set --secret` command for each.
        """
        from rich.console import Console
        from rich.table import Table

        from commerce_ops.paths import repo_root
        from commerce_platform import catalogue
        from commerce_platform.environments import (
            REVIEW_STACK,
            EnvironmentConfigError,
            declared_secrets,
            load_environment,
        )
        from commerce_platform.secrets import missing_secret_message, required_secrets

        root = repo_root()
        err = Console(stderr=True)
        try:
            env = load_environment(stack, root)
            review = bool(REVIEW_STACK.match(stack))
            declared = set() if review else set(declared_secrets(stack, root))
        except EnvironmentConfigError as exc:
            err.print(f"[red]error:[/red] {exc}", highlight=False, soft_wrap=True)
            raise typer.Exit(2) from None
        needed = required_secrets(env, catalogue.SERVICES)
        console = Console()
        if review:
            console.print(
                f"{stack} is a review stack (no Pulumi.{stack}.yaml): the review-stack workflow generates its "
                f"values once into the ESC environment commerce-platform/review-{stack} and reads them back on "
                "every push (.github/scripts/stack_secrets.py)",
                highlight=False,
            )
        table = Table(title=f"secrets of stack {stack}", title_justify="left")
        table.add_column("key", no_wrap=True)
        table.add_column("set", no_wrap=True)
        table.add_column("what")
        for secret in needed:
            state = "[green]yes[/]" if secret.key in declared else ("-" if review else "[red]no[/]")
            table.add_row(secret.key, state, secret.purpose)
        optional = "yes" if "kubeconfig" in declared else "-"
        table.add_row(
            "kubeconfig",
            optional,
            "optional here: CI imports it from the stack's ESC environment (docs/deploying.md); "
            "without it, the kube context from Pulumi.<stack>.yaml",
        )
        console.print(table)
        missing = [secret for secret in needed if secret.key not in declared]
        if review:
            return
        if missing:
            for secret in missing:
                err.print(missing_secret_message(stack, secret), highlight=False, soft_wrap=True)
            raise typer.Exit(1)
        console.print(f"all {len(needed)} secrets of {stack} are set in Pulumi.{stack}.yaml", highlight=False)
