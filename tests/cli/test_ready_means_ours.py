"""Readiness counts only from our own process: when another stack grabs a port between the free-port check and
our server's bind, its 200 on that port must not make `ops dev up` believe our service is up."""

from __future__ import annotations

import subprocess
import sys
import time

import httpx
import psutil

from commerce_ops.local.ports import free_port
from commerce_ops.local.processes import ProcessRecord
from commerce_ops.local.runtime import LocalConfig, LocalPlatform
from commerce_ops.local.state import RunState
from commerce_platform import catalogue


def _record(proc: subprocess.Popen) -> ProcessRecord:
    return ProcessRecord(name="users", pid=proc.pid, create_time=psutil.Process(proc.pid).create_time())


def test_a_foreign_listener_on_our_port_is_not_our_service(tmp_path):
    port = free_port()
    offset = port - catalogue.get("users").port
    foreign = subprocess.Popen(
        [sys.executable, "-m", "http.server", str(port), "--bind", "127.0.0.1"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    ours = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                httpx.get(f"http://127.0.0.1:{port}/")
                break
            except httpx.HTTPError:
                assert time.monotonic() < deadline, "http.server did not come up"
                time.sleep(0.1)
        platform = LocalPlatform(LocalConfig(local_dir=tmp_path, port_offset=offset))
        platform.state = RunState(port_offset=offset, processes={"users": _record(ours)})
        assert platform.port("users") == port
        assert not platform._listens("users")  # something answers there, but not our process
        platform.state.processes["users"] = _record(foreign)
        assert platform._listens("users")
    finally:
        for proc in (foreign, ours):
            proc.kill()
            proc.wait(10)
