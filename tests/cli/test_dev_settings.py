"""`ops dev up --set SERVICE.SETTING=VALUE` (or OPS_DEV_SET): a service's non-secret setting other than dev's on
this laptop, kept by `ops dev restart`; a wrong one refused in one line before anything starts. Checked in this
process; every stack tests/e2e and tests/cli start runs with it (devstack.DEV_SETTINGS), and
tests/e2e/test_dev_stack.py reads it back from the running users process and the state file."""

from __future__ import annotations

import os

import pytest
from typer.testing import CliRunner

from commerce_ops.cli import app
from commerce_ops.local.environment import OverrideError, parse_overrides
from commerce_ops.local.runtime import LocalConfig, LocalPlatform
from commerce_ops.local.state import RunState


def test_set_names_a_service_and_one_of_its_settings_and_restart_keeps_it(tmp_path):
    overrides = parse_overrides(
        ["users.password_hash_time_cost=1", "users.PASSWORD_HASH_MEMORY_KIB=1024", "orders.LOG_LEVEL=a=b"]
    )
    assert overrides == {
        "users": {"PASSWORD_HASH_TIME_COST": "1", "PASSWORD_HASH_MEMORY_KIB": "1024"},
        "orders": {"LOG_LEVEL": "a=b"},
    }
    # `ops dev up` records them in the state file; `ops dev restart` (attach) starts a service with them again.
    RunState(env_overrides=overrides).save(LocalPlatform(LocalConfig(local_dir=tmp_path)).layout.state_file)
    attached = LocalPlatform.attach(tmp_path)
    assert attached.config.env_overrides == overrides
    users = attached.service_env("users")
    assert (users["PASSWORD_HASH_TIME_COST"], users["PASSWORD_HASH_MEMORY_KIB"]) == ("1", "1024")
    assert attached.service_env("orders")["LOG_LEVEL"] == "a=b"
    assert "PASSWORD_HASH_TIME_COST" not in attached.service_env("inventory")
    assert attached.service_env("inventory")["LOG_LEVEL"] != "a=b"


@pytest.mark.parametrize(
    ("item", "message"),
    [
        ("users.PASSWORD_HASH_TIME_COST", "give SERVICE.SETTING=VALUE"),
        ("PASSWORD_HASH_TIME_COST=1", "give SERVICE.SETTING=VALUE"),
        ("user.LOG_LEVEL=DEBUG", "unknown service 'user'; one of: users, inventory, orders, payments"),
        ("inventory.PASSWORD_HASH_TIME_COST=1", "inventory reads no setting PASSWORD_HASH_TIME_COST"),
        ("users.JWT_PRIVATE_KEY=x", "JWT_PRIVATE_KEY is a secret"),
    ],
)
def test_a_wrong_set_is_refused_in_one_line(item, message):
    with pytest.raises(OverrideError, match=message.replace(".", r"\.")):
        parse_overrides([item])


def test_ops_dev_up_refuses_a_wrong_set_before_it_starts_anything(tmp_path):
    local = tmp_path / "local"
    unset = {k: None for k in os.environ if k.startswith("OPS_")}
    runner = CliRunner()
    for args, env in (
        (["--set", "users.NOPE=1"], {}),
        ([], {"OPS_DEV_SET": "users.PASSWORD_HASH_TIME_COST=1 users.ADMIN_PASSWORD=x"}),
    ):
        result = runner.invoke(
            app, ["dev", "up", *args], env={**unset, "COLUMNS": "200", "OPS_LOCAL_DIR": str(local), **env}
        )
        assert result.exit_code == 2, result.output
        assert len(result.stderr.strip().splitlines()) == 1, result.stderr
        assert result.stderr.startswith("ops dev: --set 'users."), result.stderr
        assert not local.exists()
