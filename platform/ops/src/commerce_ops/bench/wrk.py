"""The load generator: Debian's wrk, driven with Lua scripts, its summary read back as JSON."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import tempfile
from dataclasses import dataclass
from importlib.resources import files
from pathlib import Path

WRK_PACKAGE = "wrk"
_MARK = "WRK_JSON "


class WrkError(RuntimeError):
    pass


@dataclass(frozen=True)
class LoadResult:
    requests: int
    seconds: float
    p50_ms: float
    p90_ms: float
    p99_ms: float
    mean_ms: float
    max_ms: float
    errors: int  # socket errors and timeouts
    non_2xx: int
    command: str = ""  # the wrk command line, for the report

    @property
    def rps(self) -> float:
        """Successful (2xx) requests per second: failures never count as throughput."""
        return max(self.requests - self.non_2xx, 0) / self.seconds if self.seconds else 0.0

    @property
    def failed(self) -> int:
        return self.errors + self.non_2xx


def ensure_debian_tool(binary: str, package: str, echo=print) -> str:
    """`binary`; installs Debian's `package` (apt-get, we run as root) when it is missing."""
    found = shutil.which(binary)
    if found:
        return found
    if os.geteuid() != 0 or not shutil.which("apt-get"):
        raise WrkError(
            f"{binary} is not installed and cannot be installed here: run `apt-get install -y {package}` as root"
        )
    echo(f"ops bench: {binary} not found; installing it with `apt-get install -y {package}` (one time)")
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    quiet = {"stdout": subprocess.DEVNULL, "stderr": subprocess.PIPE, "env": env, "text": True}
    install = ["apt-get", "install", "-y", "--no-install-recommends", package]
    attempt = subprocess.run(install, **quiet)
    if attempt.returncode != 0:
        # A fresh machine has no package lists yet.
        subprocess.run(["apt-get", "update"], **quiet)
        attempt = subprocess.run(install, **quiet)
    found = shutil.which(binary)
    if attempt.returncode != 0 or not found:
        raise WrkError(f"installing {package} failed: {attempt.stderr.strip()[-500:]}")
    return found


def ensure_wrk(echo=print) -> str:
    """The wrk binary (Debian's package, installed when missing)."""
    return ensure_debian_tool("wrk", WRK_PACKAGE, echo)


def wrk_version(binary: str) -> str:
    out = subprocess.run([binary, "--version"], capture_output=True, text=True)
    return (out.stdout or out.stderr).splitlines()[0].split(" Copyright")[0].removeprefix("wrk ").strip()


def _script(*names: str) -> str:
    return "\n".join(files("commerce_ops.bench").joinpath("lua", n).read_text() for n in names)


def run_wrk(
    url: str,
    *,
    seconds: float,
    connections: int,
    threads: int = 2,
    post_rows: tuple[str, Path] | None = None,
    timeout_seconds: float = 5.0,
    binary: str = "wrk",
) -> LoadResult:
    """Runs wrk against `url`. `post_rows=(path, data_file)` POSTs the file's rows (see lua/post_rows.lua)."""
    names = ("post_rows.lua", "report.lua") if post_rows else ("report.lua",)
    with tempfile.NamedTemporaryFile("w", suffix=".lua", delete=False) as script:
        script.write(_script(*names))
    argv = [
        binary,
        f"-t{threads}",
        f"-c{connections}",
        f"-d{max(1, round(seconds))}s",
        f"--timeout={timeout_seconds:g}s",
        "-s",
        script.name,
        url,
    ]
    if post_rows:
        argv += ["--", post_rows[0], str(post_rows[1])]
    try:
        out = subprocess.run(argv, capture_output=True, text=True, timeout=seconds + 60)
    finally:
        os.unlink(script.name)
    line = next((ln for ln in out.stdout.splitlines() if ln.startswith(_MARK)), None)
    if out.returncode != 0 or line is None:
        raise WrkError(f"wrk failed ({out.returncode}): {(out.stderr or out.stdout).strip()[-500:]}")
    raw = json.loads(line[len(_MARK) :])
    return LoadResult(
        requests=raw["requests"],
        seconds=raw["duration_us"] / 1e6,
        p50_ms=raw["p50_us"] / 1000,
        p90_ms=raw["p90_us"] / 1000,
        p99_ms=raw["p99_us"] / 1000,
        mean_ms=raw["mean_us"] / 1000,
        max_ms=raw["max_us"] / 1000,
        errors=raw["connect_errors"] + raw["read_errors"] + raw["write_errors"] + raw["timeouts"],
        non_2xx=raw["non_2xx"],
        command=" ".join(
            [
                "wrk",
                *argv[1:4],
                *argv[4:5],
                "-s",
                ("post_rows.lua+" if post_rows else "") + "report.lua",
                *argv[7:8],
                *(["--", post_rows[0], "<rows file>"] if post_rows else []),
            ]
        ),
    )
