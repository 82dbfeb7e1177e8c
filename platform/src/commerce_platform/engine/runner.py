"""Runs a Pulumi Python program for the repo's language host (platform/engine/tools/pulumi/cmd/pulumi-language-python).

`python -m commerce_platform.engine.runner --monitor ADDR --engine ADDR --project P --stack S [...] PROGRAM`: configures
the Pulumi SDK for the engine that started the host, loads the stack configuration the host passes in PULUMI_CONFIG /
PULUMI_CONFIG_SECRET_KEYS, and runs PROGRAM (a folder's __main__.py or a file) inside the stack resource.

An error is reported to the engine (`pulumi.log.error`), then the process exits 32, which tells the host that the user
has already seen the message: a RunError (bad input) is one line, anything else its traceback.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import runpy
import sys
import traceback
from concurrent.futures import ThreadPoolExecutor

import pulumi
import pulumi.runtime

REPORTED = 32


def parse(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="commerce_platform.engine.runner")
    for name in ("monitor", "engine", "project", "stack", "root_directory", "pwd", "dry_run", "tracing"):
        parser.add_argument(f"--{name}")
    parser.add_argument("--parallel", type=int, default=0)
    parser.add_argument("--organization", default="organization")
    parser.add_argument("program")
    parser.add_argument("args", nargs="*")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse(sys.argv[1:] if argv is None else argv)
    pulumi.runtime.set_all_config(
        pulumi.runtime.get_config_env(), pulumi.runtime.get_config_secret_keys_env()
    )
    settings = pulumi.runtime.Settings(
        project=args.project,
        stack=args.stack,
        monitor=args.monitor,
        engine=args.engine,
        parallel=args.parallel,
        dry_run=args.dry_run == "true",
        organization=args.organization,
        root_directory=args.root_directory,
    )
    pulumi.runtime.configure(settings)
    if args.pwd:
        os.chdir(args.pwd)
    sys.argv = [args.program, *args.args]
    loop = asyncio.new_event_loop()
    asyncio.set_event_loop(loop)
    loop.set_default_executor(ThreadPoolExecutor(max_workers=max(args.parallel, 1) * 4))
    # Unobserved futures of a failed deployment are expected; asyncio's complaints about them are noise.
    logging.getLogger("asyncio").setLevel(logging.CRITICAL)
    try:
        loop.run_until_complete(
            pulumi.runtime.run_in_stack(lambda: runpy.run_path(args.program, run_name="__main__"))
        )
    except pulumi.RunError as exc:
        pulumi.log.error(str(exc))
        return REPORTED
    except Exception:
        pulumi.log.error(f"Program failed with an unhandled exception:\n{traceback.format_exc()}")
        return REPORTED
    finally:
        loop.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
