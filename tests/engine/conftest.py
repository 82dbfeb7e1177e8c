"""Engine tier: the real Pulumi engine, its Kubernetes provider and a local control plane (marker `engine`).

Session fixtures, in order of need:
- `toolchain`: the pinned toolchain from the cache, built when the cache is cold. Without `go` (and no warm cache)
  the tier is skipped with one line saying so, except in CI (`CI=true`), where that is a failure.
- `cluster`: `ops cluster up`'s control plane, once, in a temp state folder (not the repo's .local/).
- `workspace`: a throw-away copy of this checkout (its git-tracked and new files) with its own git history, images
  pinned by digest in environments/dev.yaml, a file backend, a generated passphrase, and the dev stack's secrets
  generated and set with `pulumi config set --secret`.

The real `pulumi up` / `pulumi destroy` summaries are printed in the terminal summary, so `ops test` shows them
whatever pytest captures.
"""

from __future__ import annotations

import os
import shutil
import sys
import tempfile
from pathlib import Path

import pytest
from engine_support import ENGINE_REPORT, GENERATED_SECRETS, REPO, commit, copy_checkout

from commerce_ops.engine.cluster import Cluster, ClusterLayout
from commerce_ops.engine.stack import Workspace, pin_images
from commerce_ops.engine.toolchain import Builder, Toolchain, ToolchainError, cache_root, go_version

ENGINE_TIMEOUT_S = 3600  # a cold toolchain build happens inside the first test's setup


def pytest_collection_modifyitems(items):
    here = Path(__file__).parent
    for item in items:
        if here in Path(item.fspath).parents:
            item.add_marker(pytest.mark.engine)
            item.add_marker(pytest.mark.timeout(ENGINE_TIMEOUT_S))


def pytest_terminal_summary(terminalreporter):
    for title, text in ENGINE_REPORT:
        terminalreporter.write_sep("=", title)
        terminalreporter.write_line(text.rstrip())


@pytest.fixture(scope="session")
def toolchain() -> Toolchain:
    chain = Toolchain.current()
    if chain.warm:
        return chain
    if go_version() is None:
        message = (
            f"engine tier: no `go` on PATH and no built engine toolchain in {cache_root()}/engine: "
            "install Go 1.26+ and run `./.ci/ops engine build`"
        )
        if os.environ.get("CI") == "true":
            pytest.fail(message, pytrace=False)
        pytest.skip(message)
    try:
        Builder(chain, say=lambda line: print(f"ops engine build: {line}", file=sys.stderr)).build()
    except ToolchainError as exc:
        pytest.fail(f"engine toolchain build failed: {exc}", pytrace=False)
    return chain


@pytest.fixture(scope="session")
def engine_tmp() -> Path:
    folder = Path(tempfile.mkdtemp(prefix="ops-engine-"))
    yield folder
    shutil.rmtree(folder, ignore_errors=True)


@pytest.fixture(scope="session")
def cluster(toolchain, engine_tmp) -> Cluster:
    control = Cluster(toolchain, ClusterLayout(engine_tmp / "cluster"), say=lambda line: None)
    control.up()
    yield control
    control.down(quiet=True)


@pytest.fixture(scope="session")
def workspace(toolchain, cluster, engine_tmp) -> Workspace:
    root = copy_checkout(REPO, engine_tmp / "repo")
    pin_images(root, "dev")
    space = Workspace(
        root=root, state=engine_tmp / "pulumi", kubeconfig=cluster.layout.kubeconfig, chain=toolchain
    )
    for key, value in space.init_stack("dev").items():
        GENERATED_SECRETS[f"dev/{key}"] = value
    commit(root, "dev: pinned images, stack secrets")
    return space
