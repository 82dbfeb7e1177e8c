"""Give a stack a generated value for every secret the program requires, stored so that it survives checkouts.

Review stacks (`pr-<N>`, default `--store esc`): `Pulumi.pr-<N>.yaml` exists only on the runner, so a value kept
there would be generated afresh on the next push (Postgres keeps the first password; restarted pods would get a
new one). The values live in the stack's own Pulumi ESC environment, `commerce-platform/review-pr-<N>`, in Pulumi
Cloud: created on the first run, read back on every later run (only keys it lacks are added), imported into the
stack's config, and removed with the stack (review-stack.yml). Every fresh checkout resolves the same values.

`--store config` (the kind job: one run, a file backend, nothing to survive) sets them in the local stack config.

Values travel through stdin only, never on a command line or in the job log.
Usage: python .github/scripts/stack_secrets.py STACK [--store esc|config]
"""

from __future__ import annotations

import argparse
import secrets
import subprocess
import sys

import yaml
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from commerce_platform import catalogue
from commerce_platform.environments import PROJECT, load_environment
from commerce_platform.secrets import required_secrets


def generated_value(key: str) -> str:
    """A fresh value for one secret key; external URLs cannot be invented, so those are refused."""
    if key == "jwtPrivateKey":
        key_pem = rsa.generate_private_key(public_exponent=65537, key_size=2048).private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )
        return key_pem.decode()
    if key.endswith("Url"):
        raise ValueError(f"{key} points at an external service and cannot be generated")
    return secrets.token_urlsafe(24)


def required_keys(stack: str) -> list[str]:
    return [s.key for s in required_secrets(load_environment(stack), catalogue.SERVICES)]


def esc_environment(stack: str) -> str:
    return f"{PROJECT}/review-{stack}"


def _pulumi(*args: str, stdin: str | None = None, check: bool = True) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["pulumi", *args], input=stdin, text=True, capture_output=True, check=check)


def _definition(environment: str) -> dict | None:
    """The stored definition (secrets stay ciphertext), or None when the environment does not exist yet."""
    found = _pulumi("env", "get", environment, "--definition", check=False)
    if found.returncode != 0:
        return None
    return yaml.safe_load(found.stdout) or {}


def store_in_esc(stack: str) -> list[str]:
    """Add the missing secrets to the stack's ESC environment and import it; returns the keys added."""
    environment = esc_environment(stack)
    definition = _definition(environment)
    values = dict((definition or {}).get("values") or {})
    stored = values.setdefault("secrets", {})
    config = values.setdefault("pulumiConfig", {})
    added = [key for key in required_keys(stack) if key not in stored]
    for key in added:
        stored[key] = {"fn::secret": generated_value(key)}
        config[f"{PROJECT}:{key}"] = f"${{secrets.{key}}}"
    if added or definition is None:
        document = yaml.safe_dump({"values": values}, sort_keys=True)
        verb = "init" if definition is None else "edit"
        _pulumi("env", verb, environment, "--file", "-", stdin=document)
    _pulumi("config", "env", "add", environment, "--stack", stack, "--yes")
    return added


def store_in_config(stack: str) -> list[str]:
    added = []
    for key in required_keys(stack):
        if _pulumi("config", "get", key, "--stack", stack, check=False).returncode == 0:
            continue
        _pulumi("config", "set", "--secret", "--stack", stack, key, stdin=generated_value(key))
        added.append(key)
    return added


def main(argv: list[str]) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("stack")
    parser.add_argument("--store", choices=("esc", "config"), default="esc")
    args = parser.parse_args(argv)
    try:
        added = store_in_esc(args.stack) if args.store == "esc" else store_in_config(args.stack)
    except subprocess.CalledProcessError as exc:
        command = " ".join(exc.cmd[:4])
        sys.exit(f"stack_secrets: `{command} ...` failed: {(exc.stderr or '').strip().splitlines()[-1:]}")
    where = esc_environment(args.stack) if args.store == "esc" else "the stack config"
    print(
        f"{args.stack}: {len(added)} generated secret(s) added to {where}: {', '.join(added) or 'none needed'}"
    )


if __name__ == "__main__":
    main(sys.argv[1:])
