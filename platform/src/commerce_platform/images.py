"""Service images: built from the one services/Dockerfile (build args SERVICE and PORT), or a pinned
`repo@sha256:` digest.

A built image is tagged with a digest of the build context it is made from: the Dockerfile, its build args and
the files it copies for that service (COPY/ADD sources, `${SERVICE}` expanded), after `.dockerignore`, as docker
itself selects them (`DockerIgnore` below, dockerfile-parse for the instructions). So a change to a
service's code changes its tag, and `ops diff` (and the engine) show that service's image change, while a change
elsewhere (tests, docs, another service) shows none.
"""

from __future__ import annotations

import hashlib
import os
import re
from importlib.metadata import version
from pathlib import Path

import pulumi

from commerce_platform import catalogue
from commerce_platform.environments import Environment, repo_root_default

# Pulumi runs the program with the `main` directory (platform/) as working directory; the build context is the
# repo root because the Dockerfile copies the shared service kit as well as the service.
BUILD_CONTEXT = ".."
DOCKERFILE = "services/Dockerfile"  # relative to the repo root (the build context)
_VARIABLE = re.compile(r"\$(?:\{(\w+)\}|(\w+))")


class DockerfileError(ValueError):
    """A COPY/ADD source names a variable no build arg sets; str() is one line."""


def build_args(spec: catalogue.ServiceSpec) -> dict[str, str]:
    """The build args that make the one Dockerfile this service's image."""
    return {"SERVICE": spec.name, "PORT": str(spec.port)}


class DockerIgnore:
    """A `.dockerignore`'s rules as the docker SDK (docker-py 7.x, `docker.utils.build.PatternMatcher`) applies
    them: every pattern cleaned of `.`/`..` and outer slashes, `*`/`?` within one path segment, `**` across any
    number, `[...]` classes, names and patterns compared lower-cased; a pattern that matches a path's leading
    folders matches the path; the last matching pattern wins, `!` includes again; `.dockerignore` itself is
    always sent. Written out here because importing the docker SDK (requests, urllib3, http.client) cost about
    a tenth of an `ops render`; tests/platform/test_image_context.py checks every file of this repo and a
    table of odd patterns against the SDK's own matcher."""

    def __init__(self, lines: list[str]):
        self.rules: list[tuple[bool, int, re.Pattern[str]]] = []  # (include again, folder depth, regex)
        for line in [*lines, "!.dockerignore"]:
            again = line.startswith("!")
            parts = _clean(line[1:] if again else line)
            if parts:
                self.rules.append((again, len(parts), re.compile(_translate("/".join(parts).lower()))))

    @classmethod
    def of(cls, root: Path) -> DockerIgnore:
        path = root / ".dockerignore"
        lines = path.read_text().splitlines() if path.is_file() else []
        return cls([line.strip() for line in lines if line.strip() and not line.strip().startswith("#")])

    def ignores(self, relative: str) -> bool:
        """Whether docker leaves `relative` (a path under the context, `/`-separated) out of the context."""
        name = relative.lower()
        folders = [p for p in name.split("/")[:-1] if p and p != "."]
        ignored = False
        for again, depth, regex in self.rules:
            if regex.match(name) or (
                folders and depth <= len(folders) and regex.match("/".join(folders[:depth]))
            ):
                ignored = not again
        return ignored


def _clean(pattern: str) -> list[str]:
    """A pattern's segments without `.`, empty ones and `..` (which also drops the segment before it)."""
    parts: list[str] = []
    for part in pattern.strip().split("/"):
        if part == "..":
            del parts[-1:]
        elif part and part != ".":
            parts.append(part)
    return parts


def _translate(pattern: str) -> str:
    """A cleaned pattern as a regex: `*`/`?` stay inside a segment, `**` spans segments."""
    out, i, n = "^", 0, len(pattern)
    while i < n:
        c, i = pattern[i], i + 1
        if c == "*" and pattern[i : i + 1] == "*":
            i += 2 if pattern[i + 1 : i + 2] == "/" else 1
            out += ".*" if i >= n else "(.*/)?"
        elif c == "*":
            out += "[^/]*"
        elif c == "?":
            out += "[^/]"
        elif c == "[" and (end := _class_end(pattern, i)) is not None:
            body, i = pattern[i:end].replace("\\", "\\\\"), end + 1
            out += "[" + ("^" + body[1:] if body[0] == "!" else "\\" + body if body[0] == "^" else body) + "]"
        else:
            out += re.escape(c)
    return out + "$"


def _class_end(pattern: str, start: int) -> int | None:
    """Where the `[...]` class opened before `start` closes (a `]` first, after an optional `!`, is literal)."""
    j = start + (pattern[start : start + 1] == "!")
    j += pattern[j : j + 1] == "]"
    end = pattern.find("]", j)
    return None if end < 0 else end


def expand(word: str, args: dict[str, str], dockerfile: Path) -> str:
    """`$NAME`/`${NAME}` replaced by the build arg, as docker does in COPY/ADD sources."""

    def value(match: re.Match[str]) -> str:
        name = match.group(1) or match.group(2)
        if name not in args:
            raise DockerfileError(
                f"{dockerfile}: COPY/ADD source {word!r} uses ${name}, which no build arg sets"
            )
        return args[name]

    return _VARIABLE.sub(value, word)


def copy_sources(dockerfile: Path, args: dict[str, str] | None = None) -> list[str]:
    """The build-context paths a Dockerfile's COPY/ADD instructions read (not `--from` other stages), with the
    build args `args` expanded."""
    from dockerfile_parse import DockerfileParser

    sources: list[str] = []
    for instruction in DockerfileParser(str(dockerfile)).structure:
        if instruction["instruction"] not in ("COPY", "ADD"):
            continue
        words = instruction["value"].split()
        if any(w.startswith("--from=") for w in words):
            continue
        # The last word is the destination.
        sources += [expand(w, args or {}, dockerfile) for w in words if not w.startswith("--")][:-1]
    return sources


def context_digest(root: Path, dockerfile: Path, args: dict[str, str] | None = None) -> str:
    """sha256 over the Dockerfile, its build args and every context file it copies with them that
    .dockerignore lets through."""
    ignore = DockerIgnore.of(root)
    digest = hashlib.sha256()
    digest.update(dockerfile.read_bytes())
    for name, value in sorted((args or {}).items()):
        digest.update(f"{name}={value}".encode() + b"\0")
    files: list[Path] = []
    for source in copy_sources(dockerfile, args):
        base = root / source
        if base.is_file():
            files.append(base)
        for folder, dirs, names in os.walk(base):
            dirs.sort()
            files += [Path(folder) / n for n in names]
    for path in sorted(set(files)):
        relative = path.relative_to(root).as_posix()
        if ignore.ignores(relative):
            continue
        digest.update(relative.encode() + b"\0" + path.read_bytes() + b"\0")
    return digest.hexdigest()


class DockerImage(pulumi.CustomResource):
    """pulumi-docker's `Image` (built and pushed by the Docker provider), declared by its fields: like the
    Kubernetes objects (components/kube.py), without importing the provider's generated SDK."""

    repoDigest: pulumi.Output[str]  # noqa: N815 - the provider's output name

    def __init__(
        self, resource_name: str, image_name: str, build: dict[str, object], opts: pulumi.ResourceOptions
    ):
        outputs = ("baseImageName", "context", "dockerfile", "platform", "registryServer", "repoDigest")
        # buildOnPreview and skipPush: the defaults pulumi-docker's own class sends.
        props = {
            "imageName": image_name,
            "build": build,
            "buildOnPreview": False,
            "skipPush": False,
            **dict.fromkeys(outputs),
        }
        opts = pulumi.ResourceOptions.merge(pulumi.ResourceOptions(version=version("pulumi_docker")), opts)
        super().__init__("docker:index/image:Image", resource_name, props, opts)


def service_image(
    env: Environment, spec: catalogue.ServiceSpec, opts: pulumi.ResourceOptions, repo_root: Path | None = None
) -> tuple[pulumi.Output[str], DockerImage | None]:
    """The image reference a Deployment runs (always by digest), and the Image resource when it is built."""
    release = env.spec.services[spec.name].release
    if not env.spec.services[spec.name].builds:
        return pulumi.Output.from_input(release), None
    # The checkout the images are built from: the given root when it holds the services (a full checkout, as
    # `ops diff` renders each side), else this code's own (a render of another folder's environments/ only).
    root = Path(repo_root) if repo_root and (Path(repo_root) / "services").is_dir() else repo_root_default()
    args = build_args(spec)
    context = context_digest(root, root / DOCKERFILE, args)[:16]
    image = DockerImage(
        f"{spec.name}-image",
        # The tag names the source: a code change is a new tag (and a new digest), visible in every preview.
        f"{env.spec.image_repository}/{spec.name}:{env.name}-{context}",
        {
            "context": BUILD_CONTEXT,
            "dockerfile": f"{BUILD_CONTEXT}/{DOCKERFILE}",
            "args": args,
            "platform": "linux/amd64",
        },
        opts,
    )
    # The pushed digest, so pods never run a mutable tag even in dev.
    return image.repoDigest, image
