"""Every service's Dockerfile: hadolint-clean, multi-stage, non-root, exec-form uvicorn CMD on the catalogue port."""

from __future__ import annotations

import json
import re
import subprocess
from pathlib import Path

import pytest

from commerce_platform import catalogue

REPO_ROOT = Path(__file__).resolve().parents[2]
HADOLINT = REPO_ROOT / ".venv" / "bin" / "hadolint"
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


@pytest.fixture(params=sorted(SPECS), ids=str)
def service(request) -> tuple[catalogue.ServiceSpec, Path]:
    spec = SPECS[request.param]
    return spec, REPO_ROOT / "services" / spec.name / "Dockerfile"


def test_hadolint_is_clean(service):
    _, dockerfile = service
    result = subprocess.run(
        [str(HADOLINT), "--no-color", str(dockerfile)], capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_multi_stage_with_a_slim_python_runtime(service):
    _, dockerfile = service
    froms = [args for keyword, args in instructions(dockerfile) if keyword == "FROM"]
    assert len(froms) >= 2, "builder stage + runtime stage"
    assert froms[-1].split()[0] == "python:3.11-slim"
    assert any(keyword == "COPY" and args.startswith("--from=") for keyword, args in final_stage(dockerfile))


def test_runs_as_uid_1000(service):
    _, dockerfile = service
    users = [args for keyword, args in final_stage(dockerfile) if keyword == "USER"]
    assert users and users[-1].split(":")[0] == "1000"


def test_cmd_is_exec_form_uvicorn_on_the_catalogue_port(service):
    spec, dockerfile = service
    cmds = [args for keyword, args in final_stage(dockerfile) if keyword == "CMD"]
    assert cmds, "a CMD in the runtime stage"
    cmd = json.loads(cmds[-1])  # exec form is a JSON array
    assert cmd[:2] == ["uvicorn", spec.app]
    assert cmd[cmd.index("--port") + 1] == str(spec.port)
    assert cmd[cmd.index("--host") + 1] == "0.0.0.0"
    assert int(cmd[cmd.index("--timeout-graceful-shutdown") + 1]) > 0
    assert ("EXPOSE", str(spec.port)) in final_stage(dockerfile)


def test_healthcheck_uses_only_the_installed_python(service):
    spec, dockerfile = service
    checks = [args for keyword, args in final_stage(dockerfile) if keyword == "HEALTHCHECK"]
    assert checks
    command = json.loads(checks[-1][checks[-1].index("CMD") + 3 :])
    assert command[0] == "python" and "urllib.request" in command[-1]
    assert f"127.0.0.1:{spec.port}{catalogue.LIVENESS_PATH}" in command[-1]
