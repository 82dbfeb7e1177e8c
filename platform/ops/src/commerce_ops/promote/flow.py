"""`ops promote <from> <to>`: check, rewrite, preview, commit on a promotion branch, and open the pull request."""

from __future__ import annotations

import shlex
import shutil
import subprocess
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from commerce_ops.git import git
from commerce_ops.preview.baseline import PreviewError, render_both
from commerce_ops.preview.changes import Plan, diff_graphs
from commerce_ops.preview.report import to_markdown
from commerce_ops.promote import NothingToPromote, PromotionRefused
from commerce_ops.promote.registries import ImageCopy, copy_images, refuse_without_copy, retarget
from commerce_ops.promote.rewrite import ServiceChange, load_sizing, rewrite_releases
from commerce_ops.promote.sources import check_digests, source_images
from commerce_platform.catalogue import BY_NAME
from commerce_platform.environments import REVIEW_STACK, EnvironmentConfigError, load_environment


@dataclass
class Promotion:
    source: str
    target: str
    changes: list[ServiceChange]
    read_from: str
    base_sha: str = ""
    base_branch: str = ""
    branch: str = ""
    commit: str = ""
    plan: Plan | None = None
    pr_command: list[str] = field(default_factory=list)
    copies: list[ImageCopy] = field(default_factory=list)
    verb: str = "Promote"  # or "Roll back" (ops rollback)

    @property
    def title(self) -> str:
        return f"{self.verb} {self.source} → {self.target}: {', '.join(c.service for c in self.changes)}"

    def commit_message(self) -> str:
        lines = [self.title, "", f"Image digests read from {self.read_from}.", ""]
        for change in self.changes:
            if change.old != change.new:
                lines.append(f"- {change.service}: {change.old} → {change.new}")
            if change.sizing:
                lines.append(f"- {change.service}: sizing ({', '.join(change.sizing)}) from {self.source}")
        if self.copies:
            lines += ["", f"Copied by digest into {self.target}'s registry:"]
            lines += [f"- {c.source} → {c.target}" for c in self.copies]
        return "\n".join(lines) + "\n"


def _git(root: Path, *args: str) -> str:
    """commerce_ops.git.git, refusing the promotion with `git SUBCOMMAND: <git's last line>`."""
    return git(root, *args, error=PromotionRefused, brief=True)


def _require_clean(root: Path) -> None:
    _git(root, "rev-parse", "--verify", "HEAD")
    status = subprocess.run(
        ["git", "status", "--porcelain", "--untracked-files=no"], cwd=root, capture_output=True, text=True
    ).stdout.splitlines()
    if status:
        files = ", ".join(line[3:] for line in status[:3]) + (", …" if len(status) > 3 else "")
        raise PromotionRefused(
            f"the working tree has uncommitted changes ({files}); commit or stash them first"
        )


def _target_file(root: Path, target: str) -> Path:
    if REVIEW_STACK.match(target):
        raise PromotionRefused(
            f"{target} is a review stack derived from dev; promote into a defined environment"
        )
    path = root / "environments" / f"{target}.yaml"
    if not path.is_file():
        raise PromotionRefused(f"unknown environment {target!r} (no environments/{target}.yaml)")
    return path


def _selected(services: Sequence[str]) -> list[str]:
    unknown = [s for s in services if s not in BY_NAME]
    if unknown:
        raise PromotionRefused(f"unknown service {unknown[0]!r}; known: {', '.join(BY_NAME)}")
    return list(dict.fromkeys(services)) or list(BY_NAME)


def _policy_failure(graph: dict) -> str | None:
    from commerce_platform.policy import evaluate_graph

    mandatory = [v for v in evaluate_graph(graph) if v.mandatory]
    if not mandatory:
        return None
    first = mandatory[0]
    where = first.resource.display if first.resource else "(stack)"
    more = f" (and {len(mandatory) - 1} more)" if len(mandatory) > 1 else ""
    return f"{first.rule.id} on {where}: {first.message}{more}"


def _render_pair(root: Path, target: str) -> tuple[dict, dict]:
    """Target rendered at HEAD (the base of the promotion) and with the rewritten file (the working tree)."""
    try:
        _, graphs, _ = render_both(root, "HEAD", [target])
    except PreviewError as exc:
        raise PromotionRefused(f"cannot render {target}: {exc}") from None
    return graphs[target]


def promote(
    source: str,
    target: str,
    root: Path,
    *,
    outputs: Path | None = None,
    services: Sequence[str] = (),
    include_sizing: bool = False,
    copy: bool = False,
    images_from: tuple[dict, str] | None = None,
    verb: str = "Promote",
) -> Promotion:
    """Rewrite the target's environment file and commit it on a new promotion branch; refuse with one line.
    `images_from`: (images by service, where they were read) instead of the source's (ops rollback)."""
    if source == target:
        raise PromotionRefused("source and target are the same environment")
    _require_clean(root)
    target_file = _target_file(root, target)
    names = _selected(services)
    images, read_from = images_from or source_images(source, root, outputs)
    try:
        target_repository = load_environment(target, root).spec.image_repository
    except EnvironmentConfigError as exc:
        raise PromotionRefused(str(exc)) from None
    digests, copies = retarget(check_digests(images, names, read_from), target_repository, target)
    if not copy:
        refuse_without_copy(copies, target, target_repository)
    sizing = None
    if include_sizing:
        source_file = root / "environments" / f"{source}.yaml"
        if not source_file.is_file():
            raise PromotionRefused(f"--include-sizing needs environments/{source}.yaml")
        sizing = load_sizing(source_file.read_text())

    label = f"environments/{target}.yaml"
    original = target_file.read_text()
    new_text, changes = rewrite_releases(original, label, digests, sizing)
    if not changes:
        raise NothingToPromote(
            f"nothing to promote: {target} already runs what {source} runs ({', '.join(names)})"
        )

    promotion = Promotion(
        source, target, changes, read_from, base_sha=_git(root, "rev-parse", "HEAD"), verb=verb
    )
    promotion.copies = [c for c in copies if c.service in {ch.service for ch in changes}]
    promotion.base_branch = _git(root, "rev-parse", "--abbrev-ref", "HEAD")
    if promotion.base_branch == "HEAD":
        raise PromotionRefused(
            "HEAD is detached; check out the branch the promotion pull request should target"
        )
    prefix = "promote" if verb == "Promote" else "rollback"
    promotion.branch = f"{prefix}/{source.replace('@', '-at-')}-to-{target}-{promotion.base_sha[:7]}"
    if _git(root, "branch", "--list", promotion.branch):
        raise PromotionRefused(
            f"branch {promotion.branch} already exists; delete it or promote from a newer commit"
        )

    target_file.write_text(new_text)
    try:
        before, after = _render_pair(root, target)
        failure = _policy_failure(after)
        if failure:
            raise PromotionRefused(f"{target} would not pass ops policy {target}: {failure}")
    except BaseException:
        target_file.write_text(original)  # a refusal changes nothing
        raise
    promotion.plan = diff_graphs(
        before, after, base_label=promotion.base_sha[:7], head_label=promotion.branch
    )
    try:
        copy_images(promotion.copies)  # the images exist in the target registry before any commit names them
    except PromotionRefused:
        target_file.write_text(original)
        raise
    try:
        _git(root, "switch", "--quiet", "-c", promotion.branch)
        _git(root, "commit", "--quiet", "-m", promotion.commit_message(), "--", label)
    except PromotionRefused:
        _undo_branch(root, promotion, target_file, original)
        raise
    promotion.commit = _git(root, "rev-parse", "HEAD")
    return promotion


def _undo_branch(root: Path, promotion: Promotion, target_file: Path, original: str) -> None:
    """Back to where we started after a failed switch/commit: the file, the branch checked out, no new branch."""
    target_file.write_text(original)
    git(root, "switch", "--quiet", promotion.base_branch, check=False)
    git(root, "branch", "--quiet", "-D", promotion.branch, check=False)


def preview_markdown(promotion: Promotion) -> str:
    return to_markdown([promotion.plan]) if promotion.plan else ""


def push_and_open_pr(promotion: Promotion, root: Path) -> tuple[list[str], bool]:
    """Push the branch; open the pull request with gh when installed. Returns (gh command, whether it ran)."""
    _git(root, "push", "--quiet", "--set-upstream", "origin", promotion.branch)
    body = Path(tempfile.gettempdir()) / f"{promotion.branch.replace('/', '-')}.md"
    body.write_text(preview_markdown(promotion))
    command = [
        "gh",
        "pr",
        "create",
        "--base",
        promotion.base_branch,
        "--head",
        promotion.branch,
        "--title",
        promotion.title,
        "--body-file",
        str(body),
    ]
    if shutil.which("gh") is None:
        return command, False
    result = subprocess.run(command, cwd=root, capture_output=True, text=True)
    if result.returncode != 0:
        lines = [line for line in result.stderr.splitlines() if line.strip()] or ["failed"]
        raise PromotionRefused(f"gh pr create: {lines[-1].strip()} (branch {promotion.branch} is pushed)")
    return command, True


def shell_command(command: Sequence[str]) -> str:
    return shlex.join(command)


def rollback(target: str, commit: str, root: Path, *, services: Sequence[str] = ()) -> Promotion:
    """`target` back to the releases environments/<target>.yaml pinned at `commit`, as a reviewed pull request:
    the same checks, refusals, preview and branch as a promotion (from `<target>@<commit>`)."""
    _target_file(root, target)
    found = subprocess.run(
        ["git", "rev-parse", "--verify", "--quiet", f"{commit}^{{commit}}"],
        cwd=root,
        capture_output=True,
        text=True,
    )
    if found.returncode != 0:
        raise PromotionRefused(f"unknown commit {commit!r}")
    sha = found.stdout.strip()
    path = f"environments/{target}.yaml"
    result = subprocess.run(["git", "show", f"{sha}:{path}"], cwd=root, capture_output=True, text=True)
    if result.returncode != 0:
        raise PromotionRefused(f"{path} does not exist at {commit}")
    from ruamel.yaml import YAML

    try:
        data = YAML(typ="safe").load(result.stdout) or {}
    except Exception as exc:  # a malformed file at that commit: one line, not a traceback
        raise PromotionRefused(f"{path} at {commit} is not valid YAML: {exc}") from None
    images = {name: (svc or {}).get("release") for name, svc in (data.get("services") or {}).items()}
    return promote(
        f"{target}@{sha[:7]}",
        target,
        root,
        services=services,
        images_from=(images, f"{path} at {sha[:7]}"),
        verb="Roll back",
    )
