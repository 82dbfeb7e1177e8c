"""Running the real `pulumi` against a checkout of this repo: backend, passphrase, secrets and images for a stack.

`Workspace` wraps one checkout (the repo, or a throw-away copy in the engine tests): a file backend and a generated
passphrase under a state folder, the toolchain's PATH/PULUMI_HOME, and the kubeconfig of the local cluster.

Images: kwok pulls nothing, and dev's `release: build` needs Docker. `pin_images()` sets every service's `release`
in environments/<env>.yaml to a pinned `repo@sha256:` reference with the same rewrite `ops promote` uses, so the
program takes its ordinary digest path (images.service_image); there is no engine-only branch in the program. The
digests are derived from the service name: well-formed, stable, and served by no registry (nothing pulls them).
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import secrets
import subprocess
from dataclasses import dataclass
from pathlib import Path

from ruamel.yaml import YAML

from commerce_ops.engine.toolchain import Toolchain, engine_env
from commerce_ops.local.secrets import rsa_key_pair
from commerce_ops.promote.rewrite import rewrite_releases
from commerce_platform import catalogue
from commerce_platform.environments import BUILD, load_environment
from commerce_platform.secrets import required_secrets


class EngineError(RuntimeError):
    """A pulumi command failed; the message names the command and ends with its last output line."""


def pinned_image(repository: str, service: str) -> str:
    digest = hashlib.sha256(f"commerce-platform local image {service}".encode()).hexdigest()
    return f"{repository}/{service}@sha256:{digest}"


def cluster_provides_addons(path: Path) -> None:
    """Add-ons `release` → `cluster` in an environments/ file: the local control plane has no network to fetch
    Helm charts from and no kubelets to run them (kwok stands in for nodes); its kwok stages stand in for them."""
    yaml = YAML()
    yaml.preserve_quotes = True
    yaml.width = 4096
    data = yaml.load(path.read_text())
    addons = data.get("addons") or {}
    if addons.get("metrics_server") == "release":
        addons["metrics_server"] = "cluster"
    for key in ("ingress", "cert_manager"):
        if (addons.get(key) or {}).get("mode") == "release":
            addons[key]["mode"] = "cluster"
    out = io.StringIO()
    yaml.dump(data, out)
    path.write_text(out.getvalue())


def pin_images(root: Path, env: str) -> list[str]:
    """Prepare environments/<env>.yaml for the local control plane: `release: build` entries become pinned
    digests (returns the services changed), and the cluster add-ons are the cluster's (cluster_provides_addons)."""
    path = root / "environments" / f"{env}.yaml"
    cluster_provides_addons(path)
    environment = load_environment(env, root)
    images = {
        name: pinned_image(environment.spec.image_repository, name)
        for name, release in environment.spec.services.items()
        if release.release == BUILD
    }
    if images:
        text, _ = rewrite_releases(path.read_text(), path.name, images)
        path.write_text(text)
    return sorted(images)


def generated_secret(key: str) -> str:
    if key == "jwtPrivateKey":
        return rsa_key_pair()[0]
    return secrets.token_urlsafe(24)


@dataclass(frozen=True)
class Workspace:
    root: Path  # the checkout: Pulumi.yaml, environments/, platform/
    state: Path  # file backend, passphrase
    kubeconfig: Path
    chain: Toolchain | None  # None: a `pulumi` on PATH, used as it is

    @property
    def backend(self) -> Path:
        return self.state / "backend"

    @property
    def passphrase_file(self) -> Path:
        return self.state / "passphrase"

    def prepare(self) -> None:
        self.backend.mkdir(parents=True, exist_ok=True)
        if not self.passphrase_file.exists():
            self.passphrase_file.write_text(secrets.token_urlsafe(32))
            os.chmod(self.passphrase_file, 0o600)

    def env(self) -> dict[str, str]:
        env = engine_env(self.chain) if self.chain else dict(os.environ)
        env.update(
            {
                "PULUMI_BACKEND_URL": f"file://{self.backend}",
                "PULUMI_CONFIG_PASSPHRASE_FILE": str(self.passphrase_file),
                "KUBECONFIG": str(self.kubeconfig),
                "PULUMI_SKIP_UPDATE_CHECK": "true",
                "NO_COLOR": "1",
                # The checkout's own code, not the installed copy (as `ops diff` renders each side).
                "PYTHONPATH": os.pathsep.join(str(p) for p in self.code_path()),
                "COMMERCE_REPO_ROOT": str(self.root),
            }
        )
        env.pop("PULUMI_CONFIG_PASSPHRASE", None)
        return env

    def code_path(self) -> list[Path]:
        return [self.root / "platform" / "src", *sorted((self.root / "services").glob("*/src"))]

    def pulumi_binary(self) -> str:
        return str(self.chain.tool("pulumi")) if self.chain else "pulumi"

    def run(self, *args: str, check: bool = True, timeout: float = 900, stdin: str | None = None):
        """`pulumi ARGS` in the checkout. Values that must stay secret go in `stdin`, never in ARGS (which an
        error message repeats)."""
        done = subprocess.run(
            [self.pulumi_binary(), "--non-interactive", *args],
            cwd=self.root,
            env=self.env(),
            input=stdin,
            capture_output=True,
            text=True,
            timeout=timeout,
        )
        if check and done.returncode != 0:
            tail = (
                _error_diagnostics(done.stdout)
                or (done.stderr.strip() or done.stdout.strip()).splitlines()[-12:]
            )
            raise EngineError(f"pulumi {' '.join(args)} exited {done.returncode}:\n" + "\n".join(tail))
        return done

    def select(self, stack: str) -> None:
        self.run("stack", "select", "--create", stack)

    def set_secrets(self, stack: str) -> dict[str, str]:
        """Generate and set (encrypted) every secret the program requires for `stack` that is not set yet; returns
        the generated values (for a caller that checks they never show up in plaintext)."""
        environment = load_environment(stack, self.root)
        present = json.loads(self.run("config", "--json", "--stack", stack).stdout or "{}")
        missing = [
            s.key
            for s in required_secrets(environment, catalogue.SERVICES)
            if f"commerce-platform:{s.key}" not in present
        ]
        values = {key: generated_secret(key) for key in missing}
        for key, value in values.items():
            self.run("config", "set", "--secret", "--stack", stack, key, stdin=value)
        return values

    def init_stack(self, stack: str) -> dict[str, str]:
        self.prepare()
        self.select(stack)
        return self.set_secrets(stack)


def _error_diagnostics(stdout: str) -> list[str]:
    """The error diagnostics of a `--json` run (the resource each names, then its message), else nothing."""
    try:
        report = json.loads(stdout)
    except ValueError:
        return []
    if not isinstance(report, dict):
        return []
    return [
        f"{d.get('urn', '')} {d.get('message', '').strip()}".strip()
        for d in report.get("diagnostics", [])
        if d.get("severity") == "error"
    ]
