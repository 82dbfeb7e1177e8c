"""The image tag's build-context digest selects files as docker does: `images.DockerIgnore` against the docker SDK's
own `.dockerignore` matcher (a test dependency only; the program does not import it)."""

from __future__ import annotations

import itertools
import subprocess

import pytest
from docker.utils.build import PatternMatcher

from commerce_platform.environments import repo_root_default
from commerce_platform.images import DockerIgnore, context_digest

ROOT = repo_root_default()

PATTERNS = [
    "build",
    "/build/",
    "./build",
    "**/__pycache__",
    "**/*.pyc",
    "**",
    "*",
    "*.md",
    "docs/*.md",
    "docs/**/x?.txt",
    "services/**",
    "services/*/tests",
    "!services/kit/README.md",
    "a/../b",
    "../outside",
    ".",
    "[a-c]*.py",
    "[!a-c]*.py",
    "[^x]y",
    "[]]z",
    "[",
    "a\\*b",
    "node_modules",
    "!node_modules/keep.js",
    "README.MD",
    "  spaced  ",
    "**/deep/**",
    ".dockerignore",
]

PATHS = [
    "build",
    "build/out.bin",
    "src/build",
    "a.pyc",
    "pkg/sub/__pycache__/m.cpython-311.pyc",
    "README.md",
    "readme.MD",
    "docs/guide.md",
    "docs/deeper/guide.md",
    "docs/a/b/xy.txt",
    "docs/xy.txt",
    "services/kit/README.md",
    "services/orders/tests/test_x.py",
    "b",
    "b/c",
    "outside",
    "apple.py",
    "zebra.py",
    "^y",
    "xy",
    "]z",
    "[",
    "a*b",
    "a\\*b",
    "node_modules/keep.js",
    "node_modules/drop.js",
    "spaced",
    "x/deep/y/z",
    ".dockerignore",
    "./rel/file",
]


def _both(patterns: list[str]) -> tuple[DockerIgnore, PatternMatcher]:
    return DockerIgnore(patterns), PatternMatcher(patterns)


@pytest.mark.parametrize("pattern", PATTERNS)
def test_each_pattern_alone_and_negated_selects_what_docker_selects(pattern):
    for patterns in ([pattern], ["**", "!" + pattern], [pattern, "!" + pattern]):
        ours, docker = _both(patterns)
        differ = [p for p in PATHS if ours.ignores(p) != docker.matches(p)]
        assert differ == [], f"{patterns}: differs from docker on {differ}"


def test_pairs_of_patterns_in_both_orders_select_what_docker_selects():
    differ = []
    for first, second in itertools.permutations(PATTERNS[:14], 2):
        ours, docker = _both([first, "!" + second])
        differ += [(first, second, p) for p in PATHS if ours.ignores(p) != docker.matches(p)]
    assert differ == []


def test_this_repos_dockerignore_selects_every_file_as_docker_does():
    tracked = subprocess.run(
        ["git", "ls-files"], cwd=ROOT, capture_output=True, text=True, check=True
    ).stdout.splitlines()
    untracked = [
        ".venv/bin/python",
        ".local/bootstrap/bin/uv",
        "build/lib/x.py",
        "services/kit/src/service_kit/__pycache__/app.cpython-311.pyc",
        ".schemathesis/x",
    ]
    ours = DockerIgnore.of(ROOT)
    lines = [line.strip() for line in (ROOT / ".dockerignore").read_text().splitlines()]
    docker = PatternMatcher([line for line in lines if line and not line.startswith("#")])
    ignored = [p for p in tracked + untracked if ours.ignores(p)]
    assert set(untracked) <= set(ignored)
    assert [p for p in tracked + untracked if ours.ignores(p) != docker.matches(p)] == []


def test_the_digest_leaves_out_what_the_dockerignore_leaves_out(tmp_path):
    (tmp_path / "svc" / "__pycache__").mkdir(parents=True)
    (tmp_path / "svc" / "app.py").write_text("print('v1')\n")
    (tmp_path / "Dockerfile").write_text("FROM scratch\nCOPY svc /app\n")
    (tmp_path / ".dockerignore").write_text("# comment\n**/__pycache__\n")
    before = context_digest(tmp_path, tmp_path / "Dockerfile")
    (tmp_path / "svc" / "__pycache__" / "app.cpython-311.pyc").write_bytes(b"ignored")
    assert context_digest(tmp_path, tmp_path / "Dockerfile") == before
    (tmp_path / "svc" / "app.py").write_text("print('v2')\n")
    assert context_digest(tmp_path, tmp_path / "Dockerfile") != before
