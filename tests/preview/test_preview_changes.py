"""The diff engine on small hand-built graphs: actions, immutable fields, name-keyed lists, redaction, reports."""

from __future__ import annotations

import copy
from pathlib import Path

from commerce_ops.preview.changes import ABSENT, SECRET, diff_graphs, forces_replace
from commerce_ops.preview.report import COMMENT_MARKER, to_markdown, to_text

DEPLOYMENT = "kubernetes:apps/v1:Deployment"
HPA = "kubernetes:autoscaling/v2:HorizontalPodAutoscaler"
SECRET_TYPE = "kubernetes:core/v1:Secret"
PULUMI_SECRET = {"4dabf18193072939515e22adb298388d": "1b47061264138c4ac30d75fd1eb44270", "value": "hunter22"}


def _resource(kind_type: str, name: str, props: dict) -> dict:
    kind = kind_type.rsplit(":", 1)[-1]
    return {
        "urn": f"urn:pulumi:prod::commerce::{kind_type}::{name}",
        "type": kind_type,
        "name": name,
        "parent": "",
        "dependencies": [],
        "props": {"kind": kind, "metadata": {"name": name, "namespace": "commerce"}, **props},
    }


def _graph() -> dict:
    container = {
        "name": "orders",
        "image": "registry.example/orders@sha256:" + "a" * 64,
        "env": [{"name": "LOG_LEVEL", "value": "info"}, {"name": "PORT", "value": "8003"}],
    }
    return {
        "environment": "prod",
        "resources": [
            _resource(
                DEPLOYMENT,
                "orders",
                {
                    "spec": {
                        "selector": {"matchLabels": {"app.kubernetes.io/name": "orders"}},
                        "template": {"spec": {"containers": [container]}},
                    }
                },
            ),
            _resource(HPA, "orders", {"spec": {"minReplicas": 2.0, "maxReplicas": 6.0}}),
            _resource(SECRET_TYPE, "orders-db", {"stringData": {"password": SECRET}}),
        ],
    }


def _find(graph: dict, type_: str) -> dict:
    return next(r for r in graph["resources"] if r["type"] == type_)


def test_identical_graphs_are_no_changes():
    plan = diff_graphs(_graph(), _graph())
    assert plan.empty and plan.unchanged == 3
    assert "no changes" in to_text(plan)


def test_hpa_max_is_one_update_with_one_field():
    after = _graph()
    _find(after, HPA)["props"]["spec"]["maxReplicas"] = 10.0
    plan = diff_graphs(_graph(), after)
    assert [(c.action, c.kind, c.name) for c in plan.changes] == [
        ("update", "HorizontalPodAutoscaler", "orders")
    ]
    (field,) = plan.changes[0].fields
    assert (field.dotted, field.before, field.after, field.forces_replace) == (
        "spec.maxReplicas",
        6.0,
        10.0,
        False,
    )
    assert "spec.maxReplicas: 6 → 10" in to_text(plan)


def test_selector_change_is_a_replace_naming_the_field():
    after = _graph()
    _find(after, DEPLOYMENT)["props"]["spec"]["selector"]["matchLabels"]["tier"] = "api"
    (change,) = diff_graphs(_graph(), after).changes
    assert change.action == "replace"
    assert change.replace_reasons == ("spec.selector.matchLabels.tier",)


def test_containers_and_env_are_matched_by_name_not_position():
    after = _graph()
    container = _find(after, DEPLOYMENT)["props"]["spec"]["template"]["spec"]["containers"][0]
    container["env"] = [{"name": "PORT", "value": "8003"}, {"name": "LOG_LEVEL", "value": "debug"}]
    (change,) = diff_graphs(_graph(), after).changes
    assert change.action == "update"
    assert [f.dotted for f in change.fields] == [
        "spec.template.spec.containers[name=orders].env[name=LOG_LEVEL].value"
    ]


def test_create_and_delete():
    before, after = _graph(), _graph()
    after["resources"] = [r for r in after["resources"] if r["type"] != HPA]
    after["resources"].append(_resource("kubernetes:policy/v1:PodDisruptionBudget", "orders", {"spec": {}}))
    actions = {(c.action, c.kind) for c in diff_graphs(before, after).changes}
    assert actions == {("delete", "HorizontalPodAutoscaler"), ("create", "PodDisruptionBudget")}


def test_secret_values_are_never_printed():
    before, after = _graph(), copy.deepcopy(_graph())
    # Even if a render ever leaked a value, the diff redacts Secret data, Pulumi secrets and secret env vars.
    _find(before, SECRET_TYPE)["props"]["stringData"]["password"] = "plain-old-password"
    _find(after, SECRET_TYPE)["props"]["stringData"]["password"] = "plain-new-password"
    container = _find(after, DEPLOYMENT)["props"]["spec"]["template"]["spec"]["containers"][0]
    container["env"].append({"name": "JWT_PRIVATE_KEY", "value": "-----BEGIN PRIVATE KEY-----"})
    container["env"].append({"name": "DATABASE_URL", "value": PULUMI_SECRET})
    plan = diff_graphs(before, after)
    rendered = to_text(plan) + to_markdown([plan])
    for leaked in ("plain-old-password", "plain-new-password", "BEGIN PRIVATE KEY", "hunter22"):
        assert leaked not in rendered
    secret_change = next(c for c in plan.changes if c.kind == "Secret")
    assert secret_change.action == "replace"  # the provider replaces Secrets on content changes
    assert (secret_change.fields[0].before, secret_change.fields[0].after) == (SECRET, SECRET)
    env_fields = {f.dotted: f for c in plan.changes for f in c.fields if "env" in f.dotted}
    assert [f.after for f in env_fields.values()] == [
        {"name": "DATABASE_URL", "value": SECRET},
        {"name": "JWT_PRIVATE_KEY", "value": SECRET},
    ]
    assert all(f.before is ABSENT for f in env_fields.values())


def test_immutable_field_table():
    assert forces_replace("StatefulSet", ("spec", "volumeClaimTemplates", 0, "spec"))
    assert forces_replace("StatefulSet", ("spec", "serviceName"))
    assert not forces_replace("StatefulSet", ("spec", "template", "spec"))
    assert not forces_replace("StatefulSet", ("spec", "replicas"))
    assert forces_replace("Job", ("spec", "template", "spec", "containers"))
    assert forces_replace("Service", ("spec", "clusterIP"))
    assert not forces_replace("Service", ("spec", "ports"))
    assert forces_replace("PersistentVolumeClaim", ("spec", "storageClassName"))
    assert not forces_replace("PersistentVolumeClaim", ("spec", "resources", "requests", "storage"))
    assert forces_replace("HorizontalPodAutoscaler", ("metadata", "name"))
    assert not forces_replace("HorizontalPodAutoscaler", ("spec", "maxReplicas"))


def test_markdown_is_summary_table_first_then_details():
    after = _graph()
    _find(after, HPA)["props"]["spec"]["maxReplicas"] = 10.0
    _find(after, DEPLOYMENT)["props"]["spec"]["selector"]["matchLabels"]["tier"] = "a|b"
    markdown = to_markdown([diff_graphs(_graph(), after)])
    lines = markdown.splitlines()
    assert lines[0] == COMMENT_MARKER
    first_table = next(i for i, line in enumerate(lines) if line.startswith("|"))
    assert lines[first_table] == "| Environment | Changes |"
    assert lines[first_table + 1] == "|---|---|"
    assert "| `prod` | 1 to replace, 1 to update, 1 unchanged |" in lines
    assert "| +- replace | Deployment | `orders` | `spec.selector.matchLabels.tier` |" in lines
    assert "| `spec.maxReplicas` | `6` | `10` |  |" in lines
    assert '| `spec.selector.matchLabels.tier` | `(absent)` | `"a\\|b"` | yes |' in lines
    assert markdown.index("<details>") > markdown.index("| Action | Kind | Resource | Changed fields |")


def test_fields_the_render_marks_secret_are_masked_before_diffing():
    before, after = _graph(), _graph()
    for graph, value in ((before, "old-value"), (after, "new-value")):
        deployment = _find(graph, DEPLOYMENT)
        deployment["secrets"] = ["/spec/template/spec/containers/0/env/0/value", "/no/such/path"]
        deployment["props"]["spec"]["template"]["spec"]["containers"][0]["env"][0]["value"] = value
    plan = diff_graphs(before, after)
    assert plan.empty  # both sides are [secret]: nothing to show, and nothing leaks
    assert "old-value" not in to_text(plan) + to_markdown([plan])


def test_markdown_renders_as_html_tables():
    from markdown_it import MarkdownIt  # GitHub-flavoured tables, as the PR comment is shown

    after = _graph()
    _find(after, HPA)["props"]["spec"]["maxReplicas"] = 10.0
    _find(after, DEPLOYMENT)["props"]["spec"]["selector"]["matchLabels"]["tier"] = "a|b"
    html = MarkdownIt("commonmark").enable("table").render(to_markdown([diff_graphs(_graph(), after)]))
    assert html.count("<table>") == 5  # overview, counts, resources, and one field table per changed resource
    assert "<td><code>spec.maxReplicas</code></td>\n<td><code>6</code></td>\n<td><code>10</code></td>" in html
    assert "<td><code>&quot;a|b&quot;</code></td>" in html  # the escaped pipe stays inside its cell


def test_a_service_code_change_shows_as_that_services_image_change_only(tmp_path):
    """`release: build`: the image tag is a digest of the build context the Dockerfile copies (after
    .dockerignore), so a code change is a preview change of that one service; ignored files change nothing."""
    import shutil

    from commerce_ops.render import render_environment

    root = Path(__file__).resolve().parents[2]
    copy = tmp_path / "repo"
    copy.mkdir()
    for name in ("environments", "services"):
        shutil.copytree(root / name, copy / name, ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
    for name in (
        "Pulumi.yaml",
        "Pulumi.dev.yaml",
        "Pulumi.prod.yaml",
        "pyproject.toml",
        "uv.lock",
        ".dockerignore",
    ):
        shutil.copy2(root / name, copy / name)

    def images() -> dict[str, str]:
        return render_environment("dev", copy, check_schema=False)["outputs"]["images"]

    before = images()
    cache = copy / "services" / "orders" / "src" / "orders_service" / "__pycache__"
    cache.mkdir(exist_ok=True)
    (cache / "main.cpython-311.pyc").write_bytes(b"ignored by .dockerignore")
    assert images() == before
    main = copy / "services" / "orders" / "src" / "orders_service" / "main.py"
    main.write_text(main.read_text() + "\n# a code change\n")
    after = images()
    assert {s for s in after if after[s] != before[s]} == {"orders"}
    kit = copy / "services" / "kit" / "src" / "service_kit" / "health.py"
    kit.write_text(kit.read_text() + "\n# every service copies the kit\n")
    assert {s for s, ref in images().items() if ref != after[s]} == {
        "users",
        "inventory",
        "orders",
        "payments",
    }
