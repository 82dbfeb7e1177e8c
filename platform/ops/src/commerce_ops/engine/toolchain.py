"""The engine toolchain: the Pulumi CLI, its Python host and Kubernetes provider, and a local control plane.

Every version is in platform/engine/versions.env; the Go tools modules beside it (tools/pulumi, tools/kube) lock the
dependency graphs in go.sum. `build()` runs `go build` from those modules into
`<cache>/engine/<key>/bin`, where `<cache>` is $OPS_CACHE_DIR, else $XDG_CACHE_HOME/commerce-platform, else
~/.cache/commerce-platform, and `<key>` hashes the versions file, the go.mod/go.sum files and our own Go sources, so
a warm cache is reused as it is and any change of version builds afresh beside it.

The provider and the language host are installed into a PULUMI_HOME under the same folder, so the engine never
downloads a plugin. Where a `pulumi` CLI is already on PATH, `pulumi_command()` uses it as it is.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from commerce_ops.paths import repo_root

CACHE_ENV = "OPS_CACHE_DIR"
PULUMI_PROVIDER_MODULE = "github.com/pulumi/pulumi-kubernetes/provider/v4"
PROVIDER_SCHEMA_DIR = "cmd/pulumi-resource-kubernetes"
# kwok ships its stages (how fake nodes and pods move through their lifecycle) in its module; the build copies these
# into the toolchain folder, so a cluster never reads the module cache.
KWOK_STAGE_FILES = (
    "kustomize/stage/node/fast/node-initialize.yaml",
    "kustomize/stage/node/heartbeat-with-lease/node-heartbeat-with-lease.yaml",
    "kustomize/stage/pod/fast/pod-ready.yaml",
    "kustomize/stage/pod/fast/pod-complete.yaml",
    "kustomize/stage/pod/fast/pod-delete.yaml",
)
CONTROL_PLANE = ("etcd", "kube-apiserver", "kube-controller-manager", "kube-scheduler", "kubectl", "kwok")
ENGINE = ("pulumi", "pulumi-language-python")


class ToolchainError(RuntimeError):
    """A missing prerequisite or a failed build; the message is one line naming the fix."""


def engine_dir() -> Path:
    return repo_root() / "platform" / "engine"


def versions(path: Path | None = None) -> dict[str, str]:
    """KEY=VALUE lines of versions.env (comments and blank lines skipped)."""
    values = {}
    for line in (path or engine_dir() / "versions.env").read_text().splitlines():
        line = line.strip()
        if line and not line.startswith("#"):
            key, _, value = line.partition("=")
            values[key.strip()] = value.strip()
    return values


def cache_root() -> Path:
    if chosen := os.environ.get(CACHE_ENV):
        return Path(chosen).expanduser().resolve()
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base).expanduser().resolve() / "commerce-platform"


def key_inputs(root: Path | None = None) -> list[Path]:
    """The files whose content decides what the toolchain is: versions, module files and our Go sources."""
    root = root or engine_dir()
    files = [root / "versions.env"]
    for module in sorted(p.parent for p in (root / "tools").glob("*/go.mod")):
        files += [module / "go.mod", module / "go.sum"]
        files += sorted(module.rglob("*.go"))
    return files


def cache_key(root: Path | None = None) -> str:
    digest = hashlib.sha256()
    base = root or engine_dir()
    for path in key_inputs(root):
        digest.update(path.relative_to(base).as_posix().encode() + b"\0" + path.read_bytes() + b"\0")
    return digest.hexdigest()[:16]


@dataclass(frozen=True)
class Toolchain:
    home: Path  # <cache>/engine/<key>

    @classmethod
    def current(cls) -> Toolchain:
        return cls(cache_root() / "engine" / cache_key())

    @property
    def bin_dir(self) -> Path:
        return self.home / "bin"

    @property
    def plugin_dir(self) -> Path:
        return self.home / "plugins" / "kubernetes"

    @property
    def pulumi_home(self) -> Path:
        return self.home / "pulumi-home"

    @property
    def stamp(self) -> Path:
        return self.home / "complete.json"

    def tool(self, name: str) -> Path:
        return self.bin_dir / name

    @property
    def warm(self) -> bool:
        return self.stamp.is_file() and not self.missing()

    def missing(self) -> list[str]:
        return [n for n in (*CONTROL_PLANE, *ENGINE) if not self.tool(n).is_file()]


def go_version() -> str | None:
    """`go1.26.8`, or None when there is no `go` on PATH."""
    go = shutil.which("go")
    if go is None:
        return None
    out = subprocess.run([go, "env", "GOVERSION"], capture_output=True, text=True, check=False)
    return out.stdout.strip() or None


def _go_at_least(found: str, wanted: str) -> bool:
    def parts(v: str) -> tuple[int, ...]:
        return tuple(int(p) for p in v.removeprefix("go").split(".")[:2] if p.isdigit())

    return parts(found) >= parts(wanted)


def system_pulumi() -> Path | None:
    """A `pulumi` CLI on PATH that is not ours (a user's install), used as it is."""
    found = shutil.which("pulumi")
    return Path(found) if found else None


def engine_env(chain: Toolchain, base: dict[str, str] | None = None) -> dict[str, str]:
    """Environment for our `pulumi`: our bin first on PATH, its own PULUMI_HOME, no update check, no downloads."""
    env = dict(os.environ if base is None else base)
    env["PATH"] = f"{chain.bin_dir}{os.pathsep}{env.get('PATH', '')}"
    env["PULUMI_HOME"] = str(chain.pulumi_home)
    env["PULUMI_SKIP_UPDATE_CHECK"] = "true"
    env["PULUMI_DISABLE_AUTOMATIC_PLUGIN_ACQUISITION"] = "true"
    return env


class Builder:
    """`go build` of every tool into a toolchain folder, then the plugin install. Logs to `<home>/build.log`."""

    def __init__(self, chain: Toolchain, say: Callable[[str], None] = print) -> None:
        self.chain = chain
        self.say = say
        self.values = versions()
        self.log = chain.home / "build.log"

    def _run(self, argv: list[str], cwd: Path, env: dict[str, str] | None = None) -> str:
        with open(self.log, "a") as log:
            log.write(f"$ (cd {cwd} && {' '.join(argv)})\n")
            log.flush()
            done = subprocess.run(
                argv, cwd=cwd, env=env, stdout=subprocess.PIPE, stderr=log, text=True, check=False
            )
            log.write(done.stdout)
        if done.returncode != 0:
            raise ToolchainError(
                f"`{' '.join(argv[:3])} …` failed in {cwd} (exit {done.returncode}); see {self.log}"
            )
        return done.stdout

    def _go_build(self, module: Path, out: Path, packages: list[str], ldflags: str = "") -> None:
        flags = f"-s -w {ldflags}".strip()
        self._run(["go", "build", "-trimpath", f"-ldflags={flags}", "-o", str(out), *packages], cwd=module)

    def build(self) -> None:
        found = go_version()
        wanted = self.values["GO_VERSION"]
        if found is None:
            raise ToolchainError(
                f"no `go` on PATH: install Go {wanted} or newer (https://go.dev/doc/install)"
            )
        if not _go_at_least(found, wanted):
            raise ToolchainError(f"{found} is too old for the engine toolchain: install Go {wanted} or newer")
        self.chain.home.mkdir(parents=True, exist_ok=True)
        self.chain.bin_dir.mkdir(exist_ok=True)
        tools = engine_dir() / "tools"
        bin_dir = f"{self.chain.bin_dir}{os.sep}"
        started = time.monotonic()

        self.say(
            f"building the control plane (k8s.io/kubernetes {self.values['KUBERNETES_VERSION']}, kwok) …"
        )
        kube = tools / "kube"
        self._go_build(
            kube,
            Path(bin_dir),
            [
                f"k8s.io/kubernetes/cmd/{n}"
                for n in ("kube-apiserver", "kube-controller-manager", "kube-scheduler")
            ]
            + ["k8s.io/kubernetes/cmd/kubectl", "sigs.k8s.io/kwok/cmd/kwok"],
        )
        self.say(f"building etcd {self.values['ETCD_VERSION']} …")
        self._go_build(kube, self.chain.tool("etcd"), ["go.etcd.io/etcd/server/v3"])
        self._write_kwok_stages(kube)

        pulumi_version = self.values["PULUMI_VERSION"]
        sdk_version = f"-X github.com/pulumi/pulumi/sdk/v3/go/common/version.Version={pulumi_version}"
        module = tools / "pulumi"
        self.say(f"building the Pulumi CLI {pulumi_version} and its Python language host …")
        self._go_build(
            module, self.chain.tool("pulumi"), ["github.com/pulumi/pulumi/pkg/v3/cmd/pulumi"], sdk_version
        )
        self._go_build(
            module, self.chain.tool("pulumi-language-python"), ["./cmd/pulumi-language-python"], sdk_version
        )

        k8s_version = self.values["PULUMI_KUBERNETES_VERSION"]
        self.say(f"building the Kubernetes provider {k8s_version} …")
        self.chain.plugin_dir.mkdir(parents=True, exist_ok=True)
        self._go_build(
            module,
            self.chain.plugin_dir / "pulumi-resource-kubernetes",
            ["./cmd/pulumi-resource-kubernetes"],
            f"-X {PULUMI_PROVIDER_MODULE}/pkg/version.Version={k8s_version}",
        )
        self._write_schema(module, k8s_version)
        self._install_plugin(k8s_version)
        self.chain.stamp.write_text(
            json.dumps(
                {"versions": self.values, "go": found, "seconds": round(time.monotonic() - started)}, indent=2
            )
        )

    def _module_dir(self, module: Path, path: str) -> Path:
        return Path(self._run(["go", "list", "-m", "-f", "{{.Dir}}", path], cwd=module).strip())

    def _write_kwok_stages(self, module: Path) -> None:
        source = self._module_dir(module, "sigs.k8s.io/kwok")
        stages = [(source / f).read_text().strip() for f in KWOK_STAGE_FILES]
        target = self.chain.home / "kwok" / "stages.yaml"
        target.parent.mkdir(exist_ok=True)
        target.write_text("\n---\n".join(stages) + "\n")

    def _write_schema(self, module: Path, version: str) -> None:
        """What upstream's generate.go writes next to its main: schema.json with its version set, and the mapping."""
        source = self._module_dir(module, PULUMI_PROVIDER_MODULE)
        schema = json.loads((source / PROVIDER_SCHEMA_DIR / "schema.json").read_text())
        schema["version"] = version
        (self.chain.plugin_dir / "schema-embed.json").write_text(json.dumps(schema, separators=(",", ":")))
        mapping = json.loads((source / PROVIDER_SCHEMA_DIR / "terraform-mapping.json").read_text())
        (self.chain.plugin_dir / "terraform-mapping-embed.json").write_text(
            json.dumps(mapping, separators=(",", ":"))
        )

    def _install_plugin(self, version: str) -> None:
        argv = [
            str(self.chain.tool("pulumi")),
            "plugin",
            "install",
            "resource",
            "kubernetes",
            version,
            "--reinstall",
        ]
        self._run(
            [*argv, "--file", str(self.chain.plugin_dir)], cwd=self.chain.home, env=engine_env(self.chain)
        )


def build(say: Callable[[str], None] = print) -> tuple[Toolchain, bool]:
    """Builds the current toolchain unless it is warm; returns it and whether anything was built."""
    chain = Toolchain.current()
    if chain.warm:
        return chain, False
    Builder(chain, say).build()
    return chain, True
