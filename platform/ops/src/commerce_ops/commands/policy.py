"""`ops policy <env>`: the policy rules on the rendered graph, offline (no cluster, no Pulumi CLI)."""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

if TYPE_CHECKING:
    from rich.console import Console
    from rich.table import Table

    from commerce_ops.policy.checkov import CheckovReport
    from commerce_platform.policy import Violation

# The rules, checkov and rich are imported inside the functions: `ops --help` must not pay for them.

EXIT_VIOLATIONS = 1
EXIT_USAGE = 2


WIDE = 140  # from this many columns the rules table has a Description column; below, it sits under the id


def rules_table(width: int = WIDE) -> Table:
    """One row per rule. Narrower than WIDE columns the description goes under the rule's id, so the table
    still fits (80 columns) with whole headers."""
    from rich import box
    from rich.table import Table

    from commerce_platform.policy import RULES

    wide = width >= WIDE
    table = Table(
        title=f"{len(RULES)} policy rules",
        box=box.SIMPLE_HEAD,
        title_justify="left",
        pad_edge=False,
        padding=(0, 1, 0, 0),
    )
    table.add_column("Rule", no_wrap=wide, overflow="fold")
    for column in ("Severity", "Enforcement", "Envs", "Scope"):
        table.add_column(column, no_wrap=True)
    if wide:
        table.add_column("Description")
    for rule in RULES:
        envs = ", ".join(sorted(rule.environments)) if rule.environments else "all"
        cells = [rule.severity.value, rule.enforcement.value, envs, rule.scope]
        if wide:
            table.add_row(rule.id, *cells, rule.description)
        else:
            table.add_row(f"[bold]{rule.id}[/]\n{rule.description}", *cells, end_section=True)
    return table


def violations_table(environment: str, violations: list[Violation]) -> Table:
    from rich.table import Table

    table = Table(title=f"policy violations in {environment}")
    table.add_column("Rule", no_wrap=True)
    table.add_column("Resource", overflow="fold")
    table.add_column("Message")
    table.add_column("Enforcement", no_wrap=True)
    for v in violations:
        style = "red" if v.mandatory else "yellow"
        table.add_row(
            v.rule.id,
            v.resource.display if v.resource else "(stack)",
            v.message,
            f"[{style}]{v.rule.enforcement.value}[/{style}]",
        )
    return table


def fail(console: Console, message: str) -> None:
    console.print(f"[red]error:[/red] {message}", highlight=False, soft_wrap=True)
    raise typer.Exit(EXIT_USAGE)


def rendered_graph(environment: str) -> dict:
    from commerce_ops.render import (
        render_environment,  # heavy (Pulumi mocks): import only when rendering
    )

    return render_environment(environment)


def checkov_table(report: CheckovReport) -> Table:
    from rich.table import Table

    table = Table(title="checkov failed checks")
    table.add_column("Check", no_wrap=True)
    table.add_column("Resource", overflow="fold")
    table.add_column("Description")
    for failure in report.failures:
        table.add_row(failure.check_id, failure.resource.split(".app.kubernetes.io")[0], failure.check_name)
    return table


def checkov_passes(console: Console, rendered: dict, graph_file: Path | None) -> bool:
    """checkov over the environment's manifests (beside --graph, or freshly written to a temp dir)."""
    from rich.console import Console

    from commerce_ops.paths import repo_root
    from commerce_ops.policy.checkov import SKIPS_FILE, load_skips, run_checkov
    from commerce_ops.render import write_render

    skips = load_skips(repo_root() / SKIPS_FILE)
    with tempfile.TemporaryDirectory(prefix="ops-policy-") as tmp:
        if graph_file is not None:
            manifests = graph_file.parent / "manifests"
        else:
            manifests = write_render(rendered, Path(tmp)) / "manifests"
        with Console(stderr=True).status("checkov: checking the manifests (about a minute)"):
            report = run_checkov(manifests, skips)
    if report.failures:
        console.print(checkov_table(report))
    # A skip whose check fails nowhere any more is named (advisory: another environment may still need it).
    stale = (
        f"; no longer needed here: {', '.join(report.stale_skips)}" if report.stale_skips else ", each needed"
    )
    console.print(
        f"checkov: {report.passed} passed, {report.failed} failed, {report.parsing_errors} parsing errors over "
        f"{report.resource_count} resources ({len(skips)} checks skipped with reasons in {SKIPS_FILE}{stale})",
        highlight=False,
        soft_wrap=True,
    )
    return report.failed == 0 and report.parsing_errors == 0


def register(app: typer.Typer) -> None:
    @app.command("policy")
    def policy(
        environment: Annotated[
            str | None, typer.Argument(help="environment to render and check (dev, prod, pr-42)")
        ] = None,
        graph: Annotated[
            Path | None, typer.Option("--graph", help="check an already-rendered graph.json instead")
        ] = None,
        list_rules: Annotated[bool, typer.Option("--list-rules", help="print the rules and exit")] = False,
        checkov: Annotated[
            bool,
            typer.Option("--checkov", help="also run checkov on the manifests (skips: checkov-skips.yaml)"),
        ] = False,
    ) -> None:
        """Check an environment against the policy rules.

        Renders it offline and checks every resource; exit 1 on any mandatory violation (or, with --checkov,
        any failed checkov check).
        """
        from rich.console import Console

        from commerce_platform.policy import RULES, evaluate_graph, load_graph

        console = Console()
        if list_rules:
            console.print(rules_table(console.width))
            return
        if graph is not None:
            try:
                rendered = load_graph(graph)
            except ValueError as exc:
                fail(console, str(exc))
            if environment is not None and environment != rendered["environment"]:
                fail(console, f"{graph} is the {rendered['environment']!r} graph, not {environment!r}")
            if checkov and not any((graph.parent / "manifests").glob("*.yaml")):
                fail(console, f"no manifests beside {graph} (write them with `ops render`)")
        elif environment is not None:
            try:
                with Console(stderr=True).status(f"rendering {environment}"):
                    rendered = rendered_graph(environment)
            except (ValueError, KeyError, FileNotFoundError) as exc:
                fail(console, f"cannot render {environment!r}: {exc}")
        else:
            fail(
                console, "name an environment (ops policy prod) or pass --graph build/render/<env>/graph.json"
            )

        violations = evaluate_graph(rendered)
        mandatory = sum(v.mandatory for v in violations)
        env = rendered["environment"]
        if violations:
            console.print(violations_table(env, violations))
        console.print(
            f"{env}: {len(RULES)} rules over {len(rendered['resources'])} resources: "
            f"{mandatory} mandatory, {len(violations) - mandatory} advisory violation(s)",
            highlight=False,
            soft_wrap=True,
        )
        checkov_ok = True
        if checkov:
            try:
                checkov_ok = checkov_passes(console, rendered, graph)
            except (ValueError, FileNotFoundError, RuntimeError) as exc:
                fail(console, str(exc))
        if mandatory or not checkov_ok:
            raise typer.Exit(EXIT_VIOLATIONS)
