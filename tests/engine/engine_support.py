"""Helpers the engine tests share (imported by conftest.py and the test modules; pytest puts this folder on sys.path)."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

from commerce_ops.engine.stack import Workspace
from commerce_ops.git import git

REPO = Path(__file__).resolve().parents[2]
ENGINE_REPORT: list[tuple[str, str]] = []  # (title, text) for the terminal summary
OUTPUTS: list[str] = []  # every pulumi run's output, checked for plaintext secrets
GENERATED_SECRETS: dict[str, str] = {}  # stack/key -> the value set with `pulumi config set --secret`


def report(title: str, text: str) -> None:
    ENGINE_REPORT.append((title, text))


def pulumi(space: Workspace, *args: str, check: bool = True, timeout: float = 900, stdin: str | None = None):
    """A pulumi run whose output is kept for the plaintext-secret check."""
    done = space.run(*args, check=check, timeout=timeout, stdin=stdin)
    OUTPUTS.append(done.stdout + done.stderr)
    return done


def summary(output: str) -> str:
    """The run's closing summary (Policies/Outputs/Resources/Duration of the update or destroy, not its preview)."""
    lines = output.rstrip().splitlines()
    heads = [i for i, line in enumerate(lines) if line.startswith(("Updating (", "Destroying ("))]
    after = heads[-1] if heads else 0
    for marker in ("Policies:", "Outputs:", "Resources:"):
        found = [i for i, line in enumerate(lines) if i > after and line.strip() == marker]
        if found:
            return "\n".join(lines[found[0] :])
    return "\n".join(lines[-25:])


def commit(root: Path, message: str) -> None:
    git(root, "add", "-A")
    git(root, "commit", "--quiet", "--allow-empty", "-m", message)


def revert(root: Path) -> None:
    """Back to the last commit (an edit a test made to the copy)."""
    git(root, "checkout", "--", ".")


def copy_checkout(source: Path, dest: Path) -> Path:
    """The checkout's tracked and new (not ignored) files, committed as `main` in a fresh repository."""
    listed = subprocess.run(
        ["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
        cwd=source,
        capture_output=True,
        check=True,
    ).stdout.split(b"\0")
    for raw in filter(None, listed):
        rel = raw.decode()
        if not (source / rel).is_file():
            continue  # deleted in the working tree
        target = dest / rel
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(source / rel, target)
    # The program and the policy pack run in the repo's environment (Pulumi.yaml / PulumiPolicy.yaml: uv, .venv);
    # PYTHONPATH points at the copy's own code (Workspace.env).
    (dest / ".venv").symlink_to(source / ".venv")
    git(dest, "init", "--quiet", "--initial-branch=main")
    (dest / ".git" / "info" / "exclude").write_text(".venv\n")
    git(dest, "config", "user.name", "engine test")
    git(dest, "config", "user.email", "engine-test@example.invalid")
    commit(dest, "checkout")
    return dest
