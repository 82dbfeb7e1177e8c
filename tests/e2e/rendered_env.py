"""Print, as JSON, each service container's env in the rendered dev Deployment: {service: {NAME: value}}, with
secret values as null. Run as a script (its own process: the Pulumi mock monitor owns its event loop there)."""

from __future__ import annotations

import json
import sys

from commerce_ops.render import render_environment
from commerce_platform import catalogue


def container_env(environment: str) -> dict[str, dict[str, str | None]]:
    objects = [m["object"] for m in render_environment(environment, check_schema=False)["manifests"]]
    config_maps = {o["metadata"]["name"]: o.get("data", {}) for o in objects if o["kind"] == "ConfigMap"}
    names = {s.name for s in catalogue.SERVICES}
    result: dict[str, dict[str, str | None]] = {}
    for obj in objects:
        if obj["kind"] != "Deployment" or obj["metadata"]["name"] not in names:
            continue
        container = next(c for c in obj["spec"]["template"]["spec"]["containers"] if c["name"] in names)
        env: dict[str, str | None] = {}
        for source in container.get("envFrom", []):
            if "configMapRef" in source:
                env.update(config_maps[source["configMapRef"]["name"]])
        for item in container.get("env", []):
            ref = item.get("valueFrom", {})
            if "configMapKeyRef" in ref:
                env[item["name"]] = config_maps[ref["configMapKeyRef"]["name"]][ref["configMapKeyRef"]["key"]]
            elif "secretKeyRef" in ref:
                env[item["name"]] = None
            else:
                env[item["name"]] = item.get("value")
        result[container["name"]] = env
    return result


if __name__ == "__main__":
    json.dump(
        container_env(sys.argv[1] if len(sys.argv) > 1 else "dev"), sys.stdout, indent=2, sort_keys=True
    )
