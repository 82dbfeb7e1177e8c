"""Plans as terminal text or as one markdown PR comment (summary table first, then per-resource details)."""

from __future__ import annotations

from collections.abc import Sequence

from commerce_ops.preview.changes import ACTIONS, Plan, ResourceChange, format_value

SYMBOLS = {"create": "+", "delete": "-", "update": "~", "replace": "+-"}
COMMENT_MARKER = "<!-- ops-diff -->"  # lets the PR workflow find and update its one comment
_MAX_CELL = 160


def summary_line(plan: Plan) -> str:
    if plan.empty:
        return "no changes"
    counts = plan.counts()
    parts = [f"{counts[a]} to {a}" for a in ACTIONS if counts[a]]
    return ", ".join(parts) + f", {plan.unchanged} unchanged"


# --- text ----------------------------------------------------------------------------------------------------------


def to_text(plan: Plan) -> str:
    header = f"{plan.environment}: {plan.base_label} → {plan.head_label}"
    lines = [header, *(f"  note: {n}" for n in plan.notes)]
    if plan.empty:
        lines.append(f"no changes ({plan.unchanged} resources)")
        return "\n".join(lines)
    width = max(len(c.kind) for c in plan.changes)
    for change in plan.changes:
        line = f"  {SYMBOLS[change.action]:>2} {change.action:<8} {change.kind:<{width}}  {change.name}"
        if change.replace_reasons:
            line += f"  (immutable: {', '.join(change.replace_reasons)})"
        lines.append(line)
        for fc in change.fields:
            lines.append(f"        {fc.dotted}: {format_value(fc.before)} → {format_value(fc.after)}")
    lines.append(summary_line(plan))
    return "\n".join(lines)


# --- markdown -----------------------------------------------------------------------------------------------------


def _code(text: str) -> str:
    if len(text) > _MAX_CELL:
        text = text[: _MAX_CELL - 1] + "…"
    text = text.replace("|", "\\|").replace("\n", " ")
    return f"`` {text} ``" if "`" in text else f"`{text}`"


def _change_row(change: ResourceChange) -> str:
    fields = ", ".join(_code(f.dotted) for f in change.fields[:5])
    if len(change.fields) > 5:
        fields += f" and {len(change.fields) - 5} more"
    return f"| {SYMBOLS[change.action]} {change.action} | {change.kind} | {_code(change.name)} | {fields or '—'} |"


def _details(change: ResourceChange) -> list[str]:
    title = f"{SYMBOLS[change.action]} {change.action} {change.kind} <code>{change.name}</code>"
    lines = [
        "<details>",
        f"<summary>{title} ({len(change.fields)} field{'s' if len(change.fields) != 1 else ''})</summary>",
        "",
    ]
    lines += ["| Field | Before | After | Replaces |", "|---|---|---|:-:|"]
    for fc in change.fields:
        forces = "yes" if fc.forces_replace else ""
        lines.append(
            f"| {_code(fc.dotted)} | {_code(format_value(fc.before))} | {_code(format_value(fc.after))} | {forces} |"
        )
    return [*lines, "", "</details>", ""]


def plan_markdown(plan: Plan) -> str:
    lines = [f"### `{plan.environment}`: {summary_line(plan)}", ""]
    lines += [f"Base {plan.base_label} → {plan.head_label}.", ""]
    lines += [f"> {n}" for n in plan.notes]
    if plan.empty:
        return "\n".join(lines)
    counts = plan.counts()
    lines += ["| " + " | ".join(ACTIONS) + " | unchanged |", "|" + "---:|" * (len(ACTIONS) + 1)]
    lines += ["| " + " | ".join(str(counts[a]) for a in ACTIONS) + f" | {plan.unchanged} |", ""]
    lines += ["| Action | Kind | Resource | Changed fields |", "|---|---|---|---|"]
    lines += [_change_row(c) for c in plan.changes]
    lines.append("")
    for change in plan.changes:
        if change.fields:
            lines += _details(change)
    return "\n".join(lines)


def to_markdown(plans: Sequence[Plan]) -> str:
    """One PR comment for any number of environments: an overview table first, then each environment."""
    lines = [COMMENT_MARKER, "## Infrastructure preview (offline render)", ""]
    lines += ["| Environment | Changes |", "|---|---|"]
    lines += [f"| `{p.environment}` | {summary_line(p)} |" for p in plans]
    lines.append("")
    for plan in plans:
        lines += [plan_markdown(plan), ""]
    return "\n".join(lines).rstrip() + "\n"
