"""An up whose new revision never becomes healthy: nothing broken keeps the site's port, the
healthy revision keeps serving, and the next up converges (tizi up's cleanup, ops.engine)."""

from __future__ import annotations

import json

import pytest
from pulumi import automation as auto

from components.ops.engine import up_or_clean
from tests.engine_support import http_status, steady_client, wait_for

from .conftest import UNLIMITED, containers, local_copy

PORT = 28400
URL = f"http://127.0.0.1:{PORT}"
LABEL = "tizi.ma/ministry=enginefail"
SERVICE = {"name": "inference", "image": "tizi/inference-service:0.1.0", "port": 8080, "secrets": ["apiKeys"]}


def test_a_revision_that_never_becomes_healthy_is_removed_and_the_next_up_converges(engine_tools, tmp_path):
    project = local_copy(tmp_path, "unix:///var/run/docker.sock", PORT, "enginefail", UNLIMITED)
    stack = project.stack("local")
    try:
        stack.up()
        key = project.api_keys("local")[0]
        assert wait_for(lambda: http_status(f"{URL}/v1/models", key) == 200, timeout=30)
        [healthy] = containers(LABEL)

        broken = {**SERVICE, "health": {"startup": "/healthz", "liveness": "/healthz", "readiness": "/never"}}
        stack.set_config("tizi:service", auto.ConfigValue(value=json.dumps(broken)))
        with steady_client(f"{URL}/v1/models", key) as loop, pytest.raises(auto.CommandError):
            up_or_clean(stack, on_output=lambda _line: None)
        assert [c["Id"] for c in containers(LABEL)] == [healthy["Id"]], "the never-healthy revision is gone"
        assert len(loop.statuses) > 50 and loop.failures == [], "the healthy revision kept serving"
        assert '"initErrors"' not in json.dumps(stack.export_stack().deployment), "nothing half-made in state"

        # back to the settings that served: the state says so too, nothing to do
        stack.set_config("tizi:service", auto.ConfigValue(value=json.dumps(SERVICE)))
        assert set(stack.up().summary.resource_changes) == {"same"}
        # fixed settings roll as usual
        fixed = {**SERVICE, "env": {"LOG_LEVEL": "debug"}}
        stack.set_config("tizi:service", auto.ConfigValue(value=json.dumps(fixed)))
        with steady_client(f"{URL}/v1/models", key) as loop:
            assert stack.up().summary.result == "succeeded"
        assert loop.failures == []
        assert [c["Id"] for c in containers(LABEL)] != [healthy["Id"]] and len(containers(LABEL)) == 1
        assert set(stack.up().summary.resource_changes) == {"same"}, "converged"
    finally:
        stack.destroy()
        stack.workspace.remove_stack("local")
    assert containers(LABEL, component=None) == []
