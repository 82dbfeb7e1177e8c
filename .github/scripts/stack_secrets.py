"""Give a Pulumi stack a fresh random value for every secret the program requires that the stack lacks.

Used for throw-away stacks only (review stacks `pr-<N>`, the kind job): their secrets are generated where they
are used and never leave the stack's encrypted config. Usage: python .github/scripts/stack_secrets.py STACK
"""

from __future__ import annotations

import secrets
import subprocess
import sys

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from commerce_platform import catalogue
from commerce_platform.environments import load_environment
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


def missing_keys(stack: str) -> list[str]:
    env = load_environment(stack)
    keys = [s.key for s in required_secrets(env, catalogue.SERVICES)]
    return [
        k
        for k in keys
        if subprocess.run(["pulumi", "config", "get", k, "--stack", stack], capture_output=True).returncode
        != 0
    ]


def main(stack: str) -> None:
    for key in missing_keys(stack):
        # The value goes through stdin, so it is never on a command line or in the job log.
        subprocess.run(
            ["pulumi", "config", "set", "--secret", "--stack", stack, key],
            input=generated_value(key),
            text=True,
            check=True,
            capture_output=True,
        )
        print(f"{stack}: set a generated value for {key}")


if __name__ == "__main__":
    if len(sys.argv) != 2:
        sys.exit("usage: stack_secrets.py STACK")
    main(sys.argv[1])
