"""Pulumi entry point (Pulumi.yaml `main: platform/`); the program lives in commerce_platform.program."""

from pathlib import Path

from commerce_platform.program import build

build(repo_root=Path(__file__).resolve().parent.parent)
