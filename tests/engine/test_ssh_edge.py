"""The same local stack deployed to the simulated edge site's engine over ssh://."""

from __future__ import annotations

import pytest

from components.targets.gateway_plan import GATEWAY_IMAGE
from tests.conftest import REPO, require
from tests.engine_support import http_status, run, wait_for

from .conftest import IMAGE, SSH_EDGE, containers, docker, local_copy, volumes

PORT = 28090
LABEL = "tizi.ma/ministry=engineedge"


@pytest.fixture(scope="module")
def edge_project(engine_tools, tmp_path_factory):
    require(
        docker("info", host=SSH_EDGE, check=False).returncode == 0,
        "no edge engine at ssh://tizi-edge: run scripts/engines.sh start",
    )
    for image in (IMAGE, GATEWAY_IMAGE):  # the payload and the site's gateway
        local_id = docker("image", "inspect", "-f", "{{.Id}}", image).stdout.strip()
        edge = docker("image", "inspect", "-f", "{{.Id}}", image, host=SSH_EDGE, check=False)
        edge_id = edge.stdout.strip()
        if edge_id != local_id:  # what a technician does with an offline bundle, done directly
            run(str(REPO / "scripts" / "engines.sh"), "load-edge", image)
    project = local_copy(tmp_path_factory.mktemp("engine-ssh"), SSH_EDGE, PORT, "engineedge")
    yield project
    stack = project.stack("local")
    stack.destroy()
    stack.workspace.remove_stack("local")


def test_up_over_ssh_serves_and_destroy_cleans_the_site(edge_project):
    stack = edge_project.stack("local")
    result = stack.up()
    assert result.outputs["endpoints"].value == {"edge-local": f"http://tizi-edge:{PORT}"}
    [container] = containers(LABEL, host=SSH_EDGE)
    assert container["Config"]["User"] == "10001:10001"
    assert containers(LABEL, component=None) == [], "nothing ran on the default engine"
    url = f"http://127.0.0.1:{PORT}"  # the simulated site publishes on this machine's loopback
    assert wait_for(lambda: http_status(f"{url}/readyz") == 200, timeout=30)
    key = edge_project.api_keys("local")[0]
    assert http_status(f"{url}/v1/models", key) == 200
    assert set(stack.up().summary.resource_changes) == {"same"}
    stack.destroy()
    assert containers(LABEL, host=SSH_EDGE, component=None) == []
    assert volumes("tizi-engineedge-", host=SSH_EDGE) == []
