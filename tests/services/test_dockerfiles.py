"""The one service Dockerfile (services/Dockerfile, build args SERVICE and PORT): hadolint-clean, multi-stage,
non-root; with each service's build args (as images.py passes them) it copies that service, exposes its catalogue
port and serves it with the one server command line (`python -m service_kit.serve`)."""

from __future__ import annotations

import json
import re
import subprocess
import sys
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from commerce_platform import catalogue
from commerce_platform.images import DOCKERFILE, DockerfileError, build_args, copy_sources
from service_kit import serve

REPO_ROOT = Path(__file__).resolve().parents[2]
HADOLINT = REPO_ROOT / ".venv" / "bin" / "hadolint"
SERVICE_DOCKERFILE = REPO_ROOT / DOCKERFILE
SPECS = {spec.name: spec for spec in catalogue.SERVICES}


def instructions(dockerfile: Path) -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) with line continuations joined and comments dropped."""
    text = re.sub(r"\\\n\s*", " ", dockerfile.read_text())
    result = []
    for line in text.splitlines():
        line = line.strip()
        if line and not line.startswith("#"):
            keyword, _, rest = line.partition(" ")
            result.append((keyword.upper(), rest.strip()))
    return result


def final_stage(dockerfile: Path) -> list[tuple[str, str]]:
    steps = instructions(dockerfile)
    last_from = max(i for i, (keyword, _) in enumerate(steps) if keyword == "FROM")
    return steps[last_from:]


def substitute(text: str, args: dict[str, str]) -> str:
    return re.sub(r"\$\{(\w+)\}", lambda m: args.get(m.group(1), m.group(0)), text)


def image_env(args: dict[str, str]) -> dict[str, str]:
    """The runtime stage's ENV with the build args substituted (the variables the image's CMD reads)."""
    env: dict[str, str] = {}
    for keyword, rest in final_stage(SERVICE_DOCKERFILE):
        if keyword == "ENV":
            env |= dict(pair.split("=", 1) for pair in substitute(rest, args).split())
    return env


@pytest.fixture(params=sorted(SPECS), ids=str)
def spec(request) -> catalogue.ServiceSpec:
    return SPECS[request.param]


def test_one_dockerfile_for_every_service():
    assert SERVICE_DOCKERFILE.is_file()
    assert not list((REPO_ROOT / "services").glob("*/Dockerfile")), "no per-service copies"


def test_hadolint_is_clean():
    result = subprocess.run(
        [str(HADOLINT), "--no-color", str(SERVICE_DOCKERFILE)], capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_multi_stage_with_a_slim_python_runtime():
    froms = [args for keyword, args in instructions(SERVICE_DOCKERFILE) if keyword == "FROM"]
    assert len(froms) >= 2, "builder stage + runtime stage"
    assert froms[-1].split()[0] == "python:3.11-slim"
    assert any(
        keyword == "COPY" and args.startswith("--from=") for keyword, args in final_stage(SERVICE_DOCKERFILE)
    )


def test_runs_as_uid_1000():
    users = [args for keyword, args in final_stage(SERVICE_DOCKERFILE) if keyword == "USER"]
    assert users and users[-1].split(":")[0] == "1000"


def test_build_args_copy_the_kit_and_that_service_only(spec):
    sources = copy_sources(SERVICE_DOCKERFILE, build_args(spec))
    assert f"services/{spec.name}" in sources and "services/kit" in sources
    assert not [
        s for s in sources if s.startswith("services/") and s not in ("services/kit", f"services/{spec.name}")
    ]
    assert all((REPO_ROOT / source).exists() for source in sources), sources


def test_a_copy_source_without_its_build_arg_is_one_line():
    with pytest.raises(DockerfileError, match=r"uses \$SERVICE, which no build arg sets"):
        copy_sources(SERVICE_DOCKERFILE, {})


def test_cmd_serves_the_app_on_the_catalogue_port(spec):
    cmds = [args for keyword, args in final_stage(SERVICE_DOCKERFILE) if keyword == "CMD"]
    assert cmds, "a CMD in the runtime stage"
    assert json.loads(cmds[-1]) == ["python", "-m", "service_kit.serve"]  # exec form
    args = build_args(spec)
    assert ("EXPOSE", str(spec.port)) in [
        (k, substitute(rest, args)) for k, rest in final_stage(SERVICE_DOCKERFILE)
    ]
    argv = serve.image_argv(image_env(args))
    assert argv[:2] == ["uvicorn", spec.app]
    assert argv[argv.index("--port") + 1] == str(spec.port)
    assert argv[argv.index("--host") + 1] == "0.0.0.0"
    assert int(argv[argv.index("--timeout-graceful-shutdown") + 1]) > 0
    assert "--no-access-log" in argv


def test_serve_without_its_variables_is_one_line():
    result = subprocess.run(
        [sys.executable, "-m", "service_kit.serve"],
        env={"PATH": "/usr/bin:/bin"},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 1
    assert result.stderr.strip().startswith("service_kit.serve: SERVICE_APP and SERVICE_PORT not set")
    assert "Traceback" not in result.stderr


def test_healthcheck_uses_only_the_installed_python():
    checks = [args for keyword, args in final_stage(SERVICE_DOCKERFILE) if keyword == "HEALTHCHECK"]
    assert checks
    command = json.loads(checks[-1][checks[-1].index("CMD") + 3 :])
    assert command == ["python", "-m", "service_kit.serve", "--check"]


def test_the_healthcheck_asks_the_liveness_path_on_the_service_port(spec):
    assert (
        serve.health_url(image_env(build_args(spec)))
        == f"http://127.0.0.1:{spec.port}{catalogue.LIVENESS_PATH}"
    )


def _check(port: int) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "service_kit.serve", "--check"],
        env={"SERVICE_PORT": str(port), "PATH": "/usr/bin:/bin"},
        capture_output=True,
        text=True,
        timeout=60,
    )


def test_the_healthcheck_passes_on_200_and_fails_in_one_line_otherwise():
    seen: list[str] = []

    class Health(BaseHTTPRequestHandler):
        def do_GET(self) -> None:  # noqa: N802 (http.server's name)
            seen.append(self.path)
            self.send_response(200 if self.path == catalogue.LIVENESS_PATH else 404)
            self.end_headers()

        def log_message(self, *args) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Health)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        port = server.server_address[1]
        assert _check(port).returncode == 0
        assert seen == [catalogue.LIVENESS_PATH]
    finally:
        server.shutdown()
        server.server_close()
    down = _check(port)  # nothing listens there any more
    assert down.returncode == 1
    assert down.stderr.startswith(f"service_kit.serve --check: http://127.0.0.1:{port}/health: ")
    assert len(down.stderr.strip().splitlines()) == 1
