"""The real rendered environments comply, and `ops policy` reports it (and bad input) properly."""

from __future__ import annotations

import json

import pytest
from crossguard_driver import crossguard_findings
from policy_objects import ENVIRONMENTS, first_container
from typer.testing import CliRunner

from commerce_ops.cli import app
from commerce_platform.policy import RULES, evaluate_graph


@pytest.mark.parametrize("env", ENVIRONMENTS)
def test_real_environment_has_no_mandatory_violation(rendered, env):
    graph = rendered(env)
    mandatory = [(v.rule.id, v.resource.display, v.message) for v in evaluate_graph(graph) if v.mandatory]
    assert mandatory == []


@pytest.mark.parametrize("env", ENVIRONMENTS)
def test_real_environment_runs_every_kind_of_workload_the_rules_cover(rendered, env):
    kinds = {r["props"].get("kind") for r in rendered(env)["resources"]}
    assert {"Deployment", "Job", "HorizontalPodAutoscaler", "PodDisruptionBudget", "NetworkPolicy"} <= kinds


def test_crossguard_pack_finds_nothing_on_the_real_prod_graph(pack, rendered):
    assert crossguard_findings(pack, rendered("prod")["resources"]) == set()


def test_ops_policy_renders_and_passes_prod():
    result = CliRunner().invoke(app, ["policy", "prod"])
    assert result.exit_code == 0, result.output
    assert f"prod: {len(RULES)} rules over" in result.output and "0 mandatory" in result.output


def test_ops_policy_graph_file_fails_on_a_mandatory_violation(prod_graph, tmp_path):
    first_container(prod_graph["resources"], "Deployment", "orders")["securityContext"]["privileged"] = True
    path = tmp_path / "graph.json"
    path.write_text(json.dumps(prod_graph))
    result = CliRunner().invoke(app, ["policy", "--graph", str(path)], env={"COLUMNS": "200"})
    assert result.exit_code == 1
    assert "no-privileged" in result.output and "Deployment/commerce-prod/orders" in result.output
    assert "1 mandatory" in result.output


@pytest.mark.parametrize(
    "args, content, message",
    [
        (["policy", "staging"], None, "cannot render 'staging'"),
        (["policy", "--graph", "{path}"], "not json", "is not JSON"),
        (["policy", "--graph", "{path}"], '{"resources": []}', "is not a rendered graph"),
        (
            ["policy", "--graph", "{path}"],
            '{"environment": "dev", "resources": [{"urn": 1}]}',
            "needs string",
        ),
        (
            ["policy", "--graph", "{path}"],
            '{"environment": "dev", "resources": [{"urn": "u", "type": "t", "name": "n", "props": [1]}]}',
            "props that are not an object",
        ),
        (
            ["policy", "--graph", "{path}", "--checkov"],
            '{"environment": "dev", "resources": []}',
            "no manifests beside",
        ),
        (["policy", "prod", "--graph", "{path}"], '{"environment": "dev", "resources": []}', "not 'prod'"),
        (["policy", "--graph", "/nonexistent/graph.json"], None, "cannot read"),
        (["policy"], None, "name an environment"),
    ],
)
def test_ops_policy_bad_input_is_one_line_and_exit_2(tmp_path, args, content, message):
    path = tmp_path / "graph.json"
    if content is not None:
        path.write_text(content)
    result = CliRunner().invoke(app, [a.format(path=path) for a in args], env={"COLUMNS": "300"})
    assert result.exit_code == 2, result.output
    assert message in result.output
    assert len(result.output.strip().splitlines()) == 1 and "Traceback" not in result.output
