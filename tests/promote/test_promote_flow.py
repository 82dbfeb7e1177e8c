"""`ops promote` end to end in a temporary clone: branch, commit, exact YAML diff, preview, refusals, push."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

# The temporary-clone helpers live with the preview tests (no conftest here: other suites import `conftest`).
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "preview"))
from repo_sandbox import clone_repo, git, ops, ops_in_process  # noqa: E402

SERVICES = ("users", "inventory", "orders", "payments")
REPOSITORY = "ghcr.io/commerce-platform"


def _digest(seed: str) -> str:
    return (seed * 64)[:64]


def _outputs(tmp_path, images: dict[str, str], name: str = "outputs.json"):
    path = tmp_path / name
    path.write_text(json.dumps({"namespace": "commerce-dev", "public_url": "https://x", "images": images}))
    return path


def _new_images() -> dict[str, str]:
    return {s: f"{REPOSITORY}/{s}@sha256:{_digest(str(i + 1))}" for i, s in enumerate(SERVICES)}


def _in_prods_registry(images: dict[str, str]) -> dict[str, str]:
    """The same digests in prod's own registry (what --copy-images writes into prod)."""
    return {s: f"{REPOSITORY}/{s}@{ref.split('@')[1]}" for s, ref in images.items()}


@pytest.fixture(scope="module")
def clone(tmp_path_factory):
    return clone_repo(tmp_path_factory.mktemp("promote") / "repo")


@pytest.fixture
def pristine(clone):
    """Every test starts on main with a clean tree and leaves it that way."""
    start = git(clone, "rev-parse", "HEAD")
    yield start
    git(clone, "checkout", "--quiet", "--force", "main")
    git(clone, "reset", "--quiet", "--hard", start)
    for branch in git(clone, "branch", "--list", "promote/*", "--format=%(refname:short)").split():
        git(clone, "branch", "--quiet", "-D", branch)


def _unchanged(clone, start: str) -> None:
    assert git(clone, "rev-parse", "HEAD") == start
    assert git(clone, "status", "--porcelain") == ""
    assert git(clone, "branch", "--list", "promote/*") == ""


def test_promotes_every_digest_on_a_branch_with_one_commit(clone, pristine, tmp_path, dev_outputs):
    before = (clone / "environments" / "prod.yaml").read_text()
    old = {
        s: re.search(rf"release: ({REPOSITORY}/{s}@sha256:[0-9a-f]{{64}})", before).group(1) for s in SERVICES
    }
    # dev's digests, as prod's own references: the prod.yaml test_copy_images_... writes too (one render for both).
    new = _in_prods_registry(dev_outputs[1])
    assert all(new[s] != old[s] for s in SERVICES)
    result = ops(clone, "promote", "dev", "prod", "--outputs", str(_outputs(tmp_path, new)))
    assert result.returncode == 0, result.stderr

    branch = f"promote/dev-to-prod-{pristine[:7]}"
    assert git(clone, "rev-parse", "--abbrev-ref", "HEAD") == branch
    assert git(clone, "rev-list", "--count", f"{pristine}..HEAD") == "1"
    assert git(clone, "diff", "--name-only", f"{pristine}..HEAD") == "environments/prod.yaml"
    message = git(clone, "log", "-1", "--format=%B")
    assert message.splitlines()[0] == "Promote dev → prod: users, inventory, orders, payments"
    for s in SERVICES:
        assert f"- {s}: {old[s]} → {new[s]}" in message

    # The exact YAML diff: the four release lines and nothing else; every comment is still there.
    diff = git(clone, "diff", "--unified=0", f"{pristine}..HEAD", "--", "environments/prod.yaml")
    changed = [line for line in diff.splitlines() if line[:1] in "+-" and not line.startswith(("+++", "---"))]
    assert sorted(changed) == sorted(
        [f"-    release: {old[s]}" for s in SERVICES] + [f"+    release: {new[s]}" for s in SERVICES]
    )
    after = (clone / "environments" / "prod.yaml").read_text()
    assert [line for line in after.splitlines() if line.lstrip().startswith("#")] == [
        line for line in before.splitlines() if line.lstrip().startswith("#")
    ]

    # The printed preview is the markdown of `ops diff prod`, and that diff is the image change only: the image
    # fields and the version label derived from the digest. Jobs are replaced (a Job's pod template is
    # immutable, so the migration re-runs with the new image); everything else is updated in place.
    assert "<!-- ops-diff -->" in result.stdout and "| Environment | Changes |" in result.stdout
    preview = ops_in_process(clone, "diff", "prod", "--base", pristine)
    assert preview.returncode == 0, preview.stderr
    swaps = {f'"{old[s]}" → "{new[s]}"' for s in SERVICES}
    swaps |= {f'"{_version(old[s])}" → "{_version(new[s])}"' for s in SERVICES}
    lines = preview.stdout.splitlines()
    fields = [line.strip().partition(": ") for line in lines if line.startswith("        ")]
    assert fields, preview.stdout
    for path, _, values in fields:
        assert path.endswith((".image", "labels.app.kubernetes.io/version")), path
        assert values in swaps, (path, values)
    assert {path for path, _, _ in fields if path.endswith(".image")} == {
        "spec.template.spec.containers[name=migrate].image",
        *(f"spec.template.spec.containers[name={s}].image" for s in SERVICES),
    }
    actions = {tuple(line.split()[1:3]) for line in lines if re.match(r"^\s+(\+-|\+|-|~) ", line)}
    assert ("replace", "Job") in actions and ("update", "Deployment") in actions
    assert {a for a, kind in actions if kind != "Job"} == {"update"}


def _version(ref: str) -> str:
    return "sha256-" + ref.rsplit(":", 1)[1][:12]


@pytest.mark.parametrize(
    ("edit", "message"),
    [
        ({"orders": None}, "no image digest for orders in "),
        ({"orders": f"{REPOSITORY}/orders:latest"}, "orders: 'ghcr.io/commerce-platform/orders:latest' in "),
        ({"orders": f"{REPOSITORY}/orders@sha256:abc123"}, "orders: malformed sha256 digest 'abc123' in "),
        ({"orders": f"{REPOSITORY}/orders@sha256:{'A' * 64}"}, "orders: malformed sha256 digest 'AAAA"),
    ],
    ids=["missing", "latest", "short-sha256", "uppercase-sha256"],
)
def test_refuses_bad_digests_and_changes_nothing(clone, pristine, tmp_path, edit, message):
    images = {k: v for k, v in {**_new_images(), **edit}.items() if v is not None}
    result = ops_in_process(clone, "promote", "dev", "prod", "--outputs", str(_outputs(tmp_path, images)))
    assert result.returncode == 1
    assert result.stderr.startswith(f"ops promote: refused: {message}")
    assert len(result.stderr.strip().splitlines()) == 1 and "Traceback" not in result.stderr
    _unchanged(clone, pristine)


def test_refuses_a_dirty_tree(clone, pristine, tmp_path):
    readme = clone / "environments" / "dev.yaml"
    readme.write_text(readme.read_text() + "\n# local edit\n")
    result = ops(clone, "promote", "dev", "prod", "--outputs", str(_outputs(tmp_path, _new_images())))
    assert result.returncode == 1
    assert result.stderr.strip() == (
        "ops promote: refused: the working tree has uncommitted changes (environments/dev.yaml); "
        "commit or stash them first"
    )
    git(clone, "checkout", "--quiet", "--", "environments/dev.yaml")
    _unchanged(clone, pristine)


def test_refuses_when_nothing_would_change(clone, pristine, tmp_path):
    current = (clone / "environments" / "prod.yaml").read_text()
    images = {s: re.search(rf"release: ({REPOSITORY}/{s}@\S+)", current).group(1) for s in SERVICES}
    result = ops_in_process(clone, "promote", "dev", "prod", "--outputs", str(_outputs(tmp_path, images)))
    assert result.returncode == 3
    assert result.stderr.strip().startswith("ops promote: refused: nothing to promote: prod already runs")
    _unchanged(clone, pristine)


def test_refuses_when_the_target_would_fail_policy(clone, pristine, tmp_path):
    # dev's sizing (HPA min 1) is not allowed in prod: the policy gate stops it and the file is restored.
    result = ops_in_process(
        clone,
        "promote",
        "dev",
        "prod",
        "--outputs",
        str(_outputs(tmp_path, _new_images())),
        "--include-sizing",
    )
    assert result.returncode == 1, result.stdout
    assert result.stderr.startswith("ops promote: refused: prod would not pass ops policy prod: ")
    assert len(result.stderr.strip().splitlines()) == 1
    _unchanged(clone, pristine)


def test_refuses_a_source_that_builds_from_source(clone, pristine):
    if shutil.which("pulumi"):
        pytest.skip("with the pulumi CLI installed the digests come from the stack, not the file")
    result = ops_in_process(clone, "promote", "dev", "prod")
    assert result.returncode == 1
    assert result.stderr.strip() == (
        "ops promote: refused: users is built from source in environments/dev.yaml, not pinned; "
        "pass --outputs with the stack outputs"
    )
    _unchanged(clone, pristine)


def test_reads_the_pinned_digests_of_the_source_file_without_outputs(clone, pristine):
    if shutil.which("pulumi"):
        pytest.skip("with the pulumi CLI installed the digests come from the stack, not the file")
    # A pinned source environment (committed in the clone only): its file is where the digests come from.
    prod = (clone / "environments" / "prod.yaml").read_text()
    current = re.search(rf"release: ({REPOSITORY}/payments@\S+)", prod).group(1)
    pinned = f"{REPOSITORY}/payments@sha256:{_digest('c')}"
    (clone / "environments" / "staging.yaml").write_text(prod.replace(current, pinned))
    git(clone, "add", "environments/staging.yaml")
    git(clone, "commit", "--quiet", "-m", "staging runs a newer payments")
    result = ops_in_process(clone, "promote", "staging", "prod", "--service", "payments")
    assert result.returncode == 0, result.stderr
    assert (
        git(clone, "log", "-1", "--format=%B").splitlines()[2]
        == "Image digests read from environments/staging.yaml."
    )
    diff = git(clone, "diff", "--unified=0", "HEAD~1..HEAD", "--", "environments/prod.yaml")
    changed = [line for line in diff.splitlines() if line[:1] in "+-" and not line.startswith(("+++", "---"))]
    assert changed == [f"-    release: {current}", f"+    release: {pinned}"]


def test_a_failed_commit_leaves_nothing_behind(clone, pristine, tmp_path, dev_outputs):
    hook = clone / ".git" / "hooks" / "pre-commit"
    hook.write_text("#!/bin/sh\necho 'blocked by a pre-commit hook' >&2\nexit 1\n")
    hook.chmod(0o755)
    images = _in_prods_registry(dev_outputs[1])  # the first test's promotion: its render is read back
    try:
        result = ops_in_process(clone, "promote", "dev", "prod", "--outputs", str(_outputs(tmp_path, images)))
    finally:
        hook.unlink()
    assert result.returncode == 1
    assert result.stderr.strip() == "ops promote: refused: git commit: blocked by a pre-commit hook"
    assert git(clone, "rev-parse", "--abbrev-ref", "HEAD") == "main"
    _unchanged(clone, pristine)


def test_refuses_a_detached_head(clone, pristine, tmp_path):
    git(clone, "switch", "--quiet", "--detach")
    result = ops_in_process(
        clone, "promote", "dev", "prod", "--outputs", str(_outputs(tmp_path, _new_images()))
    )
    assert result.returncode == 1
    assert "HEAD is detached" in result.stderr and len(result.stderr.strip().splitlines()) == 1
    _unchanged(clone, pristine)


def test_refuses_an_existing_promotion_branch(clone, pristine, tmp_path):
    branch = f"promote/dev-to-prod-{pristine[:7]}"
    git(clone, "branch", branch)
    result = ops_in_process(
        clone, "promote", "dev", "prod", "--outputs", str(_outputs(tmp_path, _new_images()))
    )
    assert result.returncode == 1
    assert result.stderr.strip() == (
        f"ops promote: refused: branch {branch} already exists; delete it or promote from a newer commit"
    )
    assert git(clone, "rev-parse", "HEAD") == pristine and git(clone, "status", "--porcelain") == ""


def test_refuses_unknown_names(clone, pristine, tmp_path):
    outputs = str(_outputs(tmp_path, _new_images()))
    assert ops_in_process(
        clone, "promote", "dev", "prod", "--outputs", outputs, "--service", "carts"
    ).stderr.strip() == (
        "ops promote: refused: unknown service 'carts'; known: users, inventory, orders, payments"
    )
    assert ops_in_process(clone, "promote", "dev", "staging", "--outputs", outputs).stderr.strip() == (
        "ops promote: refused: unknown environment 'staging' (no environments/staging.yaml)"
    )
    assert ops_in_process(clone, "promote", "prod", "prod", "--outputs", outputs).stderr.strip() == (
        "ops promote: refused: source and target are the same environment"
    )
    bad = tmp_path / "bad.json"
    bad.write_text("{not json")
    assert (
        ops_in_process(clone, "promote", "dev", "prod", "--outputs", str(bad))
        .stderr.strip()
        .startswith(f"ops promote: refused: {bad} is not JSON: ")
    )
    _unchanged(clone, pristine)


def test_push_of_one_named_service_publishes_the_branch_and_prints_the_pr_command(clone, pristine, tmp_path):
    remote = tmp_path / "remote.git"
    subprocess.run(["git", "init", "--quiet", "--bare", str(remote)], check=True)
    original_remote = git(clone, "remote", "get-url", "origin")
    git(clone, "remote", "set-url", "origin", str(remote))
    try:
        outputs = str(_outputs(tmp_path, _new_images()))
        result = ops_in_process(
            clone, "promote", "dev", "prod", "--outputs", outputs, "--service", "users", "--push"
        )
    finally:
        git(clone, "remote", "set-url", "origin", original_remote)
    assert result.returncode == 0, result.stderr
    diff = git(clone, "diff", "--unified=0", f"{pristine}..HEAD")
    changed = [line for line in diff.splitlines() if line[:1] in "+-" and not line.startswith(("+++", "---"))]
    assert [line.split("@")[0] for line in changed] == [
        f"-    release: {REPOSITORY}/users",
        f"+    release: {REPOSITORY}/users",
    ]
    assert git(clone, "log", "-1", "--format=%s") == "Promote dev → prod: users"
    branch = f"promote/dev-to-prod-{pristine[:7]}"
    pushed = subprocess.run(
        ["git", "--git-dir", str(remote), "rev-parse", branch], capture_output=True, text=True, check=True
    ).stdout.strip()
    assert pushed == git(clone, "rev-parse", "HEAD")
    if shutil.which("gh") is None:
        command = result.stdout.strip().splitlines()[-1].strip()
        assert command.startswith(f"gh pr create --base main --head {branch} --title ")
        body_file = command.rsplit(" ", 1)[-1]
        assert "<!-- ops-diff -->" in open(body_file).read()


@pytest.fixture(scope="module")
def dev_outputs(tmp_path_factory):
    """What the dev stack exports today: its offline render's outputs (images in dev's own registry)."""
    from commerce_ops.render import render_environment

    outputs = render_environment("dev", check_schema=False)["outputs"]
    assert all(ref.startswith("registry.dev.commerce.example.com/") for ref in outputs["images"].values())
    path = tmp_path_factory.mktemp("dev-outputs") / "outputs.json"
    path.write_text(json.dumps(outputs))
    return path, outputs["images"]


def _fake_crane(tmp_path, exit_code: int = 0):
    """A stand-in `crane` that records each `crane copy SRC DST` (the real one copies the manifest by digest)."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir(exist_ok=True)
    log = tmp_path / "crane.log"
    crane = bin_dir / "crane"
    crane.write_text(
        f'#!/bin/sh\necho "$@" >> {log}\n'
        + (f'echo "UNAUTHORIZED: authentication required" >&2\nexit {exit_code}\n' if exit_code else "")
    )
    crane.chmod(0o755)
    return bin_dir, log


def test_dev_refs_are_never_written_into_prod_without_a_copy(clone, pristine, dev_outputs):
    path, _ = dev_outputs
    result = ops_in_process(clone, "promote", "dev", "prod", "--outputs", str(path))
    assert result.returncode == 1
    assert result.stderr.startswith(
        "ops promote: refused: users: registry.dev.commerce.example.com/commerce/users@"
    )
    assert (
        "outside prod's registry ghcr.io/commerce-platform (and 3 more); pass --copy-images" in result.stderr
    )
    _unchanged(clone, pristine)


def test_copy_images_copies_by_digest_and_writes_prods_own_references(clone, pristine, dev_outputs, tmp_path):
    path, images = dev_outputs
    bin_dir, log = _fake_crane(tmp_path)
    result = ops_in_process(
        clone, "promote", "dev", "prod", "--outputs", str(path), "--copy-images", path_first=bin_dir
    )
    assert result.returncode == 0, result.stderr
    prod = (clone / "environments" / "prod.yaml").read_text()
    assert "registry.dev" not in prod
    expected = _in_prods_registry(
        images
    )  # test_promotes_every_digest_...'s promotion: its render is read back
    for ref in expected.values():
        assert f"release: {ref}" in prod
    assert sorted(log.read_text().splitlines()) == sorted(f"copy {images[s]} {expected[s]}" for s in SERVICES)
    message = git(clone, "log", "-1", "--format=%B")
    assert f"- {images['users']} → {expected['users']}" in message


def test_a_failed_copy_commits_nothing(clone, pristine, dev_outputs, tmp_path):
    path, _ = dev_outputs
    bin_dir, _ = _fake_crane(tmp_path, exit_code=1)
    result = ops_in_process(
        clone, "promote", "dev", "prod", "--outputs", str(path), "--copy-images", path_first=bin_dir
    )
    assert result.returncode == 1
    assert result.stderr.strip().startswith("ops promote: refused: crane copy registry.dev.")
    assert result.stderr.strip().endswith("UNAUTHORIZED: authentication required")
    _unchanged(clone, pristine)


def _commit_prod_release(clone, service: str, ref: str, message: str) -> str:
    path = clone / "environments" / "prod.yaml"
    text = path.read_text()
    current = re.search(rf"release: (\S+/{service}@sha256:[0-9a-f]{{64}})", text).group(1)
    path.write_text(text.replace(current, ref))
    git(clone, "commit", "--quiet", "-am", message)
    return current


def test_rollback_restores_the_releases_of_an_earlier_commit_as_a_reviewed_branch(clone, pristine):
    # The commit rolled back from: prod.yaml as the push test's promotion of users left it (its render is read
    # back from the cache as this rollback's base).
    promoted = _new_images()["users"]
    old = _commit_prod_release(clone, "users", promoted, "promote users")
    result = ops(clone, "rollback", "prod", pristine)
    assert result.returncode == 0, result.stderr
    head = git(clone, "rev-parse", "HEAD~1")
    assert (
        git(clone, "rev-parse", "--abbrev-ref", "HEAD")
        == f"rollback/prod-at-{pristine[:7]}-to-prod-{head[:7]}"
    )
    message = git(clone, "log", "-1", "--format=%B").splitlines()
    assert message[0] == f"Roll back prod@{pristine[:7]} → prod: users"
    assert message[2] == f"Image digests read from environments/prod.yaml at {pristine[:7]}."
    diff = git(clone, "diff", "--unified=0", "HEAD~1..HEAD", "--", "environments/prod.yaml")
    changed = [line for line in diff.splitlines() if line[:1] in "+-" and not line.startswith(("+++", "---"))]
    assert changed == [f"-    release: {promoted}", f"+    release: {old}"]
    assert "Infrastructure preview" in result.stdout or "users" in result.stdout


def test_rollback_refuses_like_promote(clone, pristine):
    unknown = ops_in_process(clone, "rollback", "prod", "no-such-commit")
    assert (unknown.returncode, unknown.stderr.strip()) == (
        1,
        "ops rollback: refused: unknown commit 'no-such-commit'",
    )
    same = ops_in_process(clone, "rollback", "prod", "HEAD")
    assert same.returncode == 3 and "nothing to promote" in same.stderr
    # A commit where prod named an image in dev's registry: never restored into prod.
    _commit_prod_release(
        clone, "orders", f"registry.dev.commerce.example.com/commerce/orders@sha256:{_digest('d')}", "bad pin"
    )
    bad = git(clone, "rev-parse", "HEAD")
    _commit_prod_release(clone, "orders", f"{REPOSITORY}/orders@sha256:{_digest('f')}", "fixed pin")
    start = git(clone, "rev-parse", "HEAD")
    refused = ops_in_process(clone, "rollback", "prod", bad)
    assert refused.returncode == 1
    assert "is outside prod's registry ghcr.io/commerce-platform" in refused.stderr
    _unchanged(clone, start)
