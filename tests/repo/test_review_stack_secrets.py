"""Review stacks keep their secrets across pushes: two fresh checkouts of `pr-<N>` resolve the same values.

`Pulumi.pr-<N>.yaml` exists only on the runner. `.github/scripts/stack_secrets.py` keeps the generated values in
the stack's ESC environment (Pulumi Cloud) and imports it into the stack config; here a fake `pulumi` on PATH
(tests/repo/fake_pulumi.py) plays the CLI and Pulumi Cloud, and each run starts from an empty checkout.
"""

from __future__ import annotations

import functools
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from cryptography.hazmat.primitives.serialization import load_pem_private_key

from commerce_platform import catalogue
from commerce_platform.environments import PROJECT, load_environment
from commerce_platform.secrets import required_secrets

REPO = Path(__file__).resolve().parents[2]
SCRIPT = REPO / ".github" / "scripts" / "stack_secrets.py"
STACK = "pr-7"


@pytest.fixture
def cloud(tmp_path: Path) -> dict[str, str]:
    """PATH with the fake `pulumi` first, and the folder standing in for Pulumi Cloud."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    fake = bin_dir / "pulumi"
    fake.write_text(f'#!/bin/sh\nexec {sys.executable} {Path(__file__).with_name("fake_pulumi.py")} "$@"\n')
    fake.chmod(0o755)
    env = {k: v for k, v in os.environ.items() if not k.startswith("PULUMI_")}
    env["PATH"] = f"{bin_dir}{os.pathsep}{env['PATH']}"
    env["FAKE_PULUMI_CLOUD"] = str(tmp_path / "cloud")
    return env


def fresh_checkout(dest: Path) -> Path:
    """What actions/checkout leaves: the committed files, no Pulumi.pr-<N>.yaml."""
    dest.mkdir()
    for name in ("Pulumi.yaml", "Pulumi.dev.yaml", "Pulumi.prod.yaml"):
        shutil.copy2(REPO / name, dest / name)
    assert not (dest / f"Pulumi.{STACK}.yaml").exists()
    return dest


def run(checkout: Path, env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, str(SCRIPT), *args],
        cwd=checkout,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )


def resolved_secrets(checkout: Path, env: dict[str, str], keys: list[str]) -> dict[str, str]:
    """What the stack's config resolves `keys` to in `checkout`: one `pulumi config get` for the first key (the
    verb a person would use) and the rest from one `pulumi config --show-secrets --json` (one process, not one a
    key); both must agree."""
    command = ["pulumi", "config", "--show-secrets", "--json", "--stack", STACK]
    listed = subprocess.run(command, cwd=checkout, env=env, capture_output=True, text=True, check=True)
    # As the loop of `config get`s read them before: a value without its trailing newline (the PEM's).
    every = {
        k.removeprefix(f"{PROJECT}:"): v["value"].rstrip("\n") for k, v in json.loads(listed.stdout).items()
    }
    values = {key: every[key] for key in keys if key in every}
    first = subprocess.run(
        ["pulumi", "config", "get", keys[0], "--stack", STACK],
        cwd=checkout,
        env=env,
        capture_output=True,
        text=True,
        check=True,
    )
    assert first.stdout.rstrip("\n") == values[keys[0]]
    return values


@functools.cache
def _keys() -> tuple[str, ...]:
    return tuple(s.key for s in required_secrets(load_environment(STACK, REPO), catalogue.SERVICES))


def keys() -> list[str]:
    return list(_keys())


def test_two_fresh_checkouts_resolve_every_secret_unchanged(cloud, tmp_path):
    first_checkout = fresh_checkout(tmp_path / "push-1")
    first_run = run(first_checkout, cloud, STACK)
    assert first_run.returncode == 0, first_run.stderr
    assert f"{len(keys())} generated secret(s) added" in first_run.stdout
    first = resolved_secrets(first_checkout, cloud, keys())
    shutil.rmtree(first_checkout)  # the runner is gone; only Pulumi Cloud remembers

    second_checkout = fresh_checkout(tmp_path / "push-2")
    second_run = run(second_checkout, cloud, STACK)
    assert second_run.returncode == 0, second_run.stderr
    assert "0 generated secret(s) added" in second_run.stdout
    second = resolved_secrets(second_checkout, cloud, keys())

    assert second == first and set(first) == set(keys())
    assert len(set(first.values())) == len(first)  # each key its own value
    assert load_pem_private_key(first["jwtPrivateKey"].encode(), password=None).key_size == 2048
    # No value is ever an argument of a pulumi command, or printed by the script, or stored unencrypted.
    argv_log = (Path(cloud["FAKE_PULUMI_CLOUD"]) / "argv.log").read_text()
    stored = "".join(p.read_text() for p in Path(cloud["FAKE_PULUMI_CLOUD"]).rglob("*.yaml"))
    for value in first.values():
        for text in (argv_log, first_run.stdout + first_run.stderr, second_run.stdout, stored):
            assert value not in text


def test_a_key_the_environment_lacks_is_added_and_the_others_kept(cloud, tmp_path):
    checkout = fresh_checkout(tmp_path / "push-1")
    assert run(checkout, cloud, STACK).returncode == 0
    before = resolved_secrets(checkout, cloud, keys())
    stored = Path(cloud["FAKE_PULUMI_CLOUD"]) / "esc" / "commerce-platform" / f"review-{STACK}.yaml"
    # Drop one key from the stored environment, as if the program had started requiring a new secret.
    definition = yaml.safe_load(stored.read_text())
    del definition["values"]["secrets"]["redisPassword"]
    del definition["values"]["pulumiConfig"]["commerce-platform:redisPassword"]
    stored.write_text(yaml.safe_dump(definition))
    again = run(fresh_checkout(tmp_path / "push-2"), cloud, STACK)
    assert again.returncode == 0 and "1 generated secret(s) added" in again.stdout
    after = resolved_secrets(tmp_path / "push-2", cloud, keys())
    assert {k: v for k, v in after.items() if k != "redisPassword"} == {
        k: v for k, v in before.items() if k != "redisPassword"
    }


def test_a_missing_pulumi_login_is_one_line(cloud, tmp_path):
    cloud["FAKE_PULUMI_CLOUD"] = "/proc/no-such-place"
    result = run(fresh_checkout(tmp_path / "push"), cloud, STACK)
    assert result.returncode != 0 and "Traceback" not in result.stderr
