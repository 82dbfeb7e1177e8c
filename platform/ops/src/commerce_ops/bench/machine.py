"""What the figures were measured on: CPU, cores, memory, OS, versions (printed beside every result)."""

from __future__ import annotations

import importlib.metadata
import os
import platform as stdlib_platform
import sys

import psutil

PACKAGES = ("fastapi", "starlette", "uvicorn", "uvloop", "httptools", "asyncpg", "redis", "httpx", "pydantic")


def cpu_model() -> str:
    try:
        with open("/proc/cpuinfo") as cpuinfo:
            for line in cpuinfo:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return stdlib_platform.processor() or "unknown"


def machine() -> dict[str, str]:
    memory_gib = psutil.virtual_memory().total / 2**30
    return {
        "cpu": cpu_model(),
        "cores": str(os.cpu_count()),
        "ram": f"{memory_gib:.1f} GiB",
        "os": f"{stdlib_platform.system()} {stdlib_platform.release()} ({_os_name()})",
    }


def _os_name() -> str:
    try:
        with open("/etc/os-release") as release:
            for line in release:
                if line.startswith("PRETTY_NAME="):
                    return line.split("=", 1)[1].strip().strip('"')
    except OSError:
        pass
    return "unknown"


def python_versions() -> dict[str, str]:
    versions = {"python": sys.version.split()[0]}
    for name in PACKAGES:
        try:
            versions[name] = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            versions[name] = "not installed"
    return versions
