"""`ops diff` end to end: real renders of a temporary clone at a base ref (worktree) and at its working tree."""

from __future__ import annotations

import re
import subprocess

import pytest
from repo_sandbox import clone_repo, git, ops, ops_in_process, shared_render_cache


@pytest.fixture(scope="module")
def clone(tmp_path_factory):
    return clone_repo(tmp_path_factory.mktemp("diff") / "repo")


@pytest.fixture
def restore(clone):
    yield
    git(clone, "checkout", "--quiet", "--", ".")


def _raise_hpa_max(clone, service: str, new_max: int) -> None:
    path = clone / "environments" / "prod.yaml"
    text = path.read_text()
    pattern = re.compile(rf"(\n  {service}:\n(?:    .*\n)*?    autoscaling: \{{min: \d+, max: )\d+")
    assert pattern.search(text), "environments/prod.yaml no longer has the flow-style autoscaling line"
    path.write_text(pattern.sub(rf"\g<1>{new_max}", text, count=1))


def test_unchanged_tree_is_no_changes(clone):
    result = ops(clone, "diff", "prod", "--base", "HEAD")
    assert result.returncode == 0, result.stderr
    assert "no changes" in result.stdout
    assert git(clone, "worktree", "list").count("\n") == 0  # the temporary worktree is gone
    # OPS_RENDER_CACHE (set by repo_sandbox.ops) holds the render, not the clone's own .local/render-cache.
    assert any(shared_render_cache().glob("*.json"))
    assert not (clone / ".local" / "render-cache").exists()


def test_renders_are_cached_by_their_inputs_and_a_changed_input_renders_again(clone, restore):
    """A graph is cached by the git ids of what a render reads: the same inputs are never rendered twice (the
    base of a clean tree is its working tree: one render), and a change to any of them is a new render."""
    cache = shared_render_cache()  # OPS_RENDER_CACHE: the inputs of a clean tree may be in it already

    def entries() -> set[str]:
        return {p.name for p in cache.glob("*.json")}

    def diff() -> subprocess.CompletedProcess[str]:
        return ops_in_process(clone, "diff", "prod", "--base", "HEAD")

    assert diff().returncode == 0
    clean = entries()
    assert clean
    again = diff()
    assert again.returncode == 0 and "no changes" in again.stdout
    assert entries() == clean  # nothing rendered: both sides from the cache
    _raise_hpa_max(clone, "orders", 17)
    changed = diff()
    assert changed.returncode == 0 and "1 to update" in changed.stdout
    assert len(entries() - clean) == 1  # the working tree's new inputs; the base came from the cache
    # Code is an input too: test_changing_a_deployment_selector_is_a_replace edits the program and renders again.


def test_raising_one_hpa_max_is_exactly_one_update(clone, restore):
    _raise_hpa_max(clone, "orders", 17)  # the test above's edit: its render is read back from the cache
    result = ops_in_process(clone, "diff", "prod", "--base", "HEAD")
    assert result.returncode == 0, result.stderr
    changes = [line.split() for line in result.stdout.splitlines() if re.match(r"^\s+(\+-|\+|-|~) ", line)]
    assert changes == [["~", "update", "HorizontalPodAutoscaler", changes[0][3]]]
    assert "orders" in changes[0][3]
    fields = [line.strip() for line in result.stdout.splitlines() if line.startswith("        ")]
    assert fields == ["spec.maxReplicas: 10 → 17"]
    assert result.stdout.rstrip().endswith("unchanged") and "1 to update" in result.stdout


def test_markdown_is_a_summary_table_then_details(clone, restore):
    _raise_hpa_max(clone, "orders", 17)  # the same edit again: read back from the cache
    result = ops_in_process(clone, "diff", "prod", "--base", "HEAD", "--format", "markdown")
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert lines[0] == "<!-- ops-diff -->"
    header = lines.index("| Environment | Changes |")
    assert lines[header + 1] == "|---|---|" and lines[header + 2].startswith("| `prod` | 1 to update, ")
    row = next(line for line in lines if line.startswith("| ~ update | HorizontalPodAutoscaler |"))
    assert row.endswith("| `spec.maxReplicas` |")
    assert "| `spec.maxReplicas` | `10` | `17` |  |" in lines
    assert result.stdout.index("| Action | Kind | Resource |") < result.stdout.index("<details>")


def test_changing_a_deployment_selector_is_a_replace(clone, restore):
    # Selector labels come from the platform code, so the change is made there: the base side runs the
    # base ref's code from its worktree, the working tree side runs the edited code.
    path = clone / "platform" / "src" / "commerce_platform" / "components" / "service.py"
    text = path.read_text()
    deployment_selector = r'(?<![\w])"selector": match\((\w+)\)'  # the first: deployment_spec()
    edited, count = re.subn(
        deployment_selector,
        r'"selector": match({**\1, "epoch": "2"})',
        text,
        count=1,
    )
    assert count == 1, "components/service.py no longer builds the Deployment selector as expected"
    assert (
        ops_in_process(clone, "diff", "prod", "--base", "HEAD").returncode == 0
    )  # the base: cached after the above
    cached = set(shared_render_cache().glob("*.json"))
    path.write_text(edited)
    result = ops_in_process(clone, "diff", "prod", "--base", "HEAD")
    assert result.returncode == 0, result.stderr
    # Code is a render input (like environments/): the edited program is one new render, the base is cached.
    assert len(set(shared_render_cache().glob("*.json")) - cached) == 1
    changes = [line.split() for line in result.stdout.splitlines() if re.match(r"^\s+(\+-|\+|-|~) ", line)]
    assert len(changes) == 4  # one Deployment per service
    assert all(c[:3] == ["+-", "replace", "Deployment"] for c in changes), changes
    assert all(c[-1] == "spec.selector.matchLabels.epoch)" for c in changes), changes


def test_the_render_cache_is_the_checkouts_own_unless_ops_render_cache_names_a_folder(tmp_path, monkeypatch):
    from commerce_ops.preview.baseline import cache_dir

    monkeypatch.delenv("OPS_RENDER_CACHE", raising=False)
    assert cache_dir(tmp_path / "repo") == tmp_path / "repo" / ".local" / "render-cache"
    monkeypatch.setenv("OPS_RENDER_CACHE", str(tmp_path / "shared"))
    assert cache_dir(tmp_path / "repo") == cache_dir(tmp_path / "another") == (tmp_path / "shared").resolve()


def test_unknown_base_ref_is_one_line(clone):
    result = ops(clone, "diff", "prod", "--base", "no-such-ref")
    assert result.returncode == 1
    assert result.stderr.strip() == "ops diff: unknown git ref 'no-such-ref'"


def test_an_environment_new_in_the_working_tree_is_all_creates(clone, restore):
    for name in ("environments/{}.yaml", "Pulumi.{}.yaml"):
        (clone / name.format("staging")).write_text((clone / name.format("prod")).read_text())
    try:
        result = ops_in_process(clone, "diff", "staging", "--base", "HEAD")
    finally:
        for name in ("environments/{}.yaml", "Pulumi.{}.yaml"):
            (clone / name.format("staging")).unlink()
    assert result.returncode == 0, result.stderr
    assert "note: `staging` does not exist at the base ref: every resource is new." in result.stdout
    actions = {line.split()[1] for line in result.stdout.splitlines() if re.match(r"^\s+(\+-|\+|-|~) ", line)}
    assert actions == {"create"}
    assert re.search(r"^\d+ to create, 0 unchanged$", result.stdout, re.MULTILINE)


def test_a_new_database_password_in_ops_diff_rolls_its_deployment_and_replaces_the_init_jobs(clone, restore):
    path = clone / "Pulumi.dev.yaml"
    key = "  commerce-platform:ordersDbPassword:\n    secure: {}\n"
    path.write_text(path.read_text() + key.format("v1:orders-password-one"))
    git(clone, "commit", "--quiet", "-am", "dev: orders' database password")
    path.write_text(path.read_text().replace("v1:orders-password-one", "v1:orders-password-two"))
    result = ops_in_process(clone, "diff", "dev", "--base", "HEAD")
    assert result.returncode == 0, result.stderr
    rows = [line.split() for line in result.stdout.splitlines() if re.match(r"^\s+(\+-|\+|-|~) ", line)]
    assert {tuple(row[1:4]) for row in rows} == {
        ("replace", "Secret", "orders-secret"),
        ("replace", "Secret", "postgres-credentials"),
        ("update", "Deployment", "orders-deployment"),  # the one Deployment that reads it
        ("replace", "Job", "orders-migration"),
        ("replace", "Job", "postgres-init-job"),
    }
    assert "commerce-platform/secret-checksum" in result.stdout
    for value in ("orders-password-one", "orders-password-two", "render-placeholder-"):
        assert value not in result.stdout + result.stderr
