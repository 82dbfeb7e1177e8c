"""The rendered Deployments' probes answer 200 on the real services.

Each service runs as a real uvicorn process started from the rendered container command (only --host/--port
swapped for a free local port: the port itself is proven equal to the probe and container ports elsewhere),
with the rendered env (cluster addresses mapped to local ones), against the run's real Postgres and Redis
(tests/conftest.py), in a database of its own migrated by the rendered migration Job's command.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest
from render_support import by_name, rendered

from commerce_ops.local.ports import free_port
from commerce_ops.local.secrets import rsa_key_pair
from commerce_platform import catalogue
from commerce_platform.service_env import cluster_addresses

BIN = Path(sys.executable).parent
START_SECONDS = 60


@pytest.fixture(scope="module")
def running(run_databases, redis_db, tmp_path_factory) -> dict[str, tuple[int, dict]]:
    """service → (local port, rendered container); stopped with SIGTERM at the end."""
    graph = rendered("dev")
    deployments = by_name(graph, "Deployment")
    config_maps = by_name(graph, "ConfigMap")
    jobs = by_name(graph, "Job")
    ports = {s.name: free_port() for s in catalogue.SERVICES}
    to_local = {
        url: f"http://127.0.0.1:{ports[name]}"
        for name, url in cluster_addresses(graph["outputs"]["namespace"], catalogue.SERVICES).items()
    }
    client_secret = "probe-client-secret-of-orders-0123456789"
    secrets = {
        "JWT_PRIVATE_KEY": rsa_key_pair()[0],
        "ADMIN_PASSWORD": "probe-admin-password",
        "SERVICE_CLIENT_SECRET": client_secret,
        "SERVICE_CLIENT_SECRETS": json.dumps({"orders": client_secret}),
    }
    databases = {s.name: run_databases.create(f"probe_{s.name}") for s in catalogue.SERVICES}
    processes: list[subprocess.Popen] = []
    started: dict[str, tuple[int, dict]] = {}
    logs = tmp_path_factory.mktemp("probe-logs")
    try:
        commands: dict[str, tuple[list[str], dict[str, str], dict]] = {}
        migrations: dict[str, subprocess.Popen] = {}
        for spec in catalogue.SERVICES:
            container = deployments[spec.name]["spec"]["template"]["spec"]["containers"][0]
            env = {"PATH": os.environ["PATH"], "HOME": os.environ.get("HOME", "/tmp")}
            for item in container["env"]:
                source = item["valueFrom"]
                if "configMapKeyRef" in source:
                    value = config_maps[source["configMapKeyRef"]["name"]]["data"][
                        source["configMapKeyRef"]["key"]
                    ]
                    for cluster, local in to_local.items():
                        value = value.replace(cluster, local)
                    env[item["name"]] = value
                elif item["name"] == "DATABASE_URL":
                    env[item["name"]] = databases[spec.name]
                elif item["name"] == "REDIS_URL":
                    env[item["name"]] = redis_db.url
                else:
                    env[item["name"]] = secrets[item["name"]]
            env["METRICS_PORT"] = str(free_port())  # like the service port: a free one on this machine
            migrate = jobs[f"{spec.name}-migrate"]["spec"]["template"]["spec"]["containers"][0]["command"]
            migrations[spec.name] = subprocess.Popen(  # each in its own database: all four at once
                [str(BIN / migrate[0]), *migrate[1:]],
                env={"PATH": env["PATH"], "DATABASE_URL": env["DATABASE_URL"]},
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                text=True,
            )
            command = list(container["command"])
            command[0] = str(BIN / command[0])
            command[command.index("--host") + 1] = "127.0.0.1"
            command[command.index("--port") + 1] = str(ports[spec.name])
            commands[spec.name] = (command, env, container)
        for migration in migrations.values():
            _, stderr = migration.communicate(timeout=120)
            assert migration.returncode == 0, stderr

        def start(name: str) -> subprocess.Popen:
            command, env, container = commands[name]
            log = open(logs / f"platform-probe-{name}.log", "w")  # noqa: SIM115 - lives as long as the process
            processes.append(subprocess.Popen(command, env=env, stdout=log, stderr=subprocess.STDOUT))
            started[name] = (ports[name], container)
            return processes[-1]

        # users first (the others fetch its JWKS), then the others side by side.
        first, *others = [spec.name for spec in catalogue.SERVICES]
        _wait_started(first, ports[first], commands[first][2], start(first))
        for name, process in [(name, start(name)) for name in others]:
            _wait_started(name, ports[name], commands[name][2], process)
        yield started
    finally:
        for process in processes:
            process.terminate()
        for process in processes:
            try:
                process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                process.kill()


def _wait_started(name: str, port: int, container: dict, process: subprocess.Popen) -> None:
    """Poll the startup probe the way the kubelet would, until it answers 200."""
    path = container["startupProbe"]["httpGet"]["path"]
    deadline = time.monotonic() + START_SECONDS
    while time.monotonic() < deadline:
        assert process.poll() is None, (
            f"{name} exited with {process.returncode} (see /tmp/platform-probe-{name}.log)"
        )
        try:
            if httpx.get(f"http://127.0.0.1:{port}{path}", timeout=2).status_code == 200:
                return
        except httpx.TransportError:
            pass
        time.sleep(0.3)
    raise AssertionError(f"{name} did not pass its startup probe {path} within {START_SECONDS}s")


@pytest.mark.parametrize("spec", catalogue.SERVICES, ids=lambda s: s.name)
def test_rendered_probes_answer_200_on_the_running_service(running, spec):
    port, container = running[spec.name]
    for probe in ("startupProbe", "livenessProbe", "readinessProbe"):
        http_get = container[probe]["httpGet"]
        assert http_get["port"] == spec.port == container["ports"][0]["containerPort"]
        response = httpx.get(
            f"http://127.0.0.1:{port}{http_get['path']}", timeout=container[probe]["timeoutSeconds"]
        )
        assert response.status_code == 200, (probe, response.text)
