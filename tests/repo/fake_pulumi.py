"""A stand-in `pulumi` CLI for the workflow scripts: the few verbs they use, with Pulumi's semantics.

State that lives in Pulumi Cloud (ESC environments; secrets stored encrypted) is kept under $FAKE_PULUMI_CLOUD;
state that lives in the checkout (Pulumi.<stack>.yaml: plain and `secure:` config, `environment:` imports) is
kept in the working directory, so deleting the checkout loses it exactly as a fresh runner does. Every
invocation's argv is appended to $FAKE_PULUMI_CLOUD/argv.log (a test checks no secret is ever an argument).

Verbs: env get ENV --definition | env init/edit ENV --file - | env rm ENV --yes | config env add ENV --stack S
--yes | config get KEY --stack S | config --show-secrets --json --stack S (every key: {"value", "secret"}) |
config set [--secret] --stack S KEY (value on stdin) | stack select [--create] S.
"""

from __future__ import annotations

import base64
import json
import os
import re
import sys
from pathlib import Path

import yaml

PROJECT = "commerce-platform"
CLOUD = Path(os.environ["FAKE_PULUMI_CLOUD"])


def _fail(message: str, code: int = 1) -> None:
    print(f"error: {message}", file=sys.stderr)
    sys.exit(code)


def _encrypt(value: str) -> dict:
    return {"ciphertext": base64.b64encode(value.encode()[::-1]).decode()}


def _decrypt(value: dict) -> str:
    return base64.b64decode(value["ciphertext"]).decode()[::-1]


def _env_path(name: str) -> Path:
    if not re.fullmatch(r"[\w.-]+/[\w.-]+", name):
        _fail(f"bad environment name {name!r}")
    return CLOUD / "esc" / f"{name}.yaml"


def _encrypt_secrets(node):
    if isinstance(node, dict):
        if set(node) == {"fn::secret"} and isinstance(node["fn::secret"], str):
            return {"fn::secret": _encrypt(node["fn::secret"])}
        return {k: _encrypt_secrets(v) for k, v in node.items()}
    if isinstance(node, list):
        return [_encrypt_secrets(v) for v in node]
    return node


def _evaluate(node, root):
    if isinstance(node, dict):
        if set(node) == {"fn::secret"}:
            return _decrypt(node["fn::secret"])
        return {k: _evaluate(v, root) for k, v in node.items()}
    if isinstance(node, str):
        match = re.fullmatch(r"\$\{([\w.]+)\}", node)
        if match:
            value = root
            for part in match.group(1).split("."):
                value = value[part]
            return _evaluate(value, root)
    return node


def _stack_file(stack: str) -> Path:
    return Path.cwd() / f"Pulumi.{stack}.yaml"


def _load_stack(stack: str) -> dict:
    path = _stack_file(stack)
    return (yaml.safe_load(path.read_text()) or {}) if path.exists() else {}


def _save_stack(stack: str, data: dict) -> None:
    _stack_file(stack).write_text(yaml.safe_dump(data, sort_keys=True))


def _option(args: list[str], name: str) -> str | None:
    return args[args.index(name) + 1] if name in args else None


def env(args: list[str]) -> None:
    verb, name = args[0], args[1]
    path = _env_path(name)
    if verb == "get":
        if not path.exists():
            _fail(f"environment {name} not found")
        print(path.read_text(), end="")
    elif verb in ("init", "edit"):
        if (verb == "init") == path.exists():
            _fail(f"environment {name} {'already exists' if path.exists() else 'not found'}")
        if _option(args, "--file") != "-":
            _fail("the scripts pass definitions on stdin only")
        definition = yaml.safe_load(sys.stdin.read()) or {}
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(yaml.safe_dump(_encrypt_secrets(definition), sort_keys=True))
    elif verb == "rm":
        path.unlink(missing_ok=True)
    else:
        _fail(f"fake pulumi: unsupported env verb {verb}")


def _resolved_config(stack: str) -> dict[str, str]:
    data = _load_stack(stack)
    values: dict[str, str] = {}
    for name in data.get("environment") or []:
        path = _env_path(name)
        if not path.exists():
            _fail(f"stack {stack} imports environment {name}, which does not exist")
        definition = yaml.safe_load(path.read_text()) or {}
        evaluated = _evaluate(definition.get("values") or {}, definition.get("values") or {})
        values.update({k: str(v) for k, v in (evaluated.get("pulumiConfig") or {}).items()})
    for key, value in (data.get("config") or {}).items():
        values[key] = _decrypt(value["secure"]) if isinstance(value, dict) else str(value)
    return values


def config(args: list[str]) -> None:
    stack = _option(args, "--stack") or _fail("--stack is required")
    if "--show-secrets" in args:
        if "--json" not in args:
            _fail("fake pulumi: config --show-secrets needs --json")
        # Every value is a secret here: the scripts store nothing else.
        print(json.dumps({k: {"value": v, "secret": True} for k, v in _resolved_config(stack).items()}))
        return
    if args[:2] == ["env", "add"]:
        name = args[2]
        if not _env_path(name).exists():
            _fail(f"environment {name} not found")
        data = _load_stack(stack)
        imports = data.setdefault("environment", [])
        if name not in imports:
            imports.append(name)
        _save_stack(stack, data)
        return
    positional = [a for i, a in enumerate(args[1:], 1) if not a.startswith("--") and args[i - 1] != "--stack"]
    key = f"{PROJECT}:{positional[0]}"
    if args[0] == "get":
        values = _resolved_config(stack)
        if key not in values:
            _fail(f"configuration key '{key}' not found for stack '{stack}'")
        print(values[key])
    elif args[0] == "set":
        data = _load_stack(stack)
        value = sys.stdin.read()
        data.setdefault("config", {})[key] = {"secure": _encrypt(value)} if "--secret" in args else value
        _save_stack(stack, data)
    else:
        _fail(f"fake pulumi: unsupported config verb {args[0]}")


def main() -> None:
    args = sys.argv[1:]
    CLOUD.mkdir(parents=True, exist_ok=True)
    with (CLOUD / "argv.log").open("a") as log:
        log.write(json.dumps(args) + "\n")
    if args[:1] == ["env"]:
        env(args[1:])
    elif args[:1] == ["config"]:
        config(args[1:])
    elif args[:2] == ["stack", "select"]:
        return
    else:
        _fail(f"fake pulumi: unsupported command {' '.join(args)}")


if __name__ == "__main__":
    main()
