"""Rolling an edge site: a new image tag or rotated keys, under a steady client, loses nothing.

The replacement container starts beside the old one on the site network, becomes healthy,
the gateway switches to it (its publisher is healthy only then), and only then is the old one
stopped and drained. Nothing relies on the payload sharing a port (SO_REUSEPORT).
"""

from __future__ import annotations

import json

import pytest
from pulumi import automation as auto

from tests.engine_support import http_status, steady_client, wait_for

from .conftest import IMAGE, UNLIMITED, containers, docker, local_copy

PORT = 28100
URL = f"http://127.0.0.1:{PORT}"
LABEL = "tizi.ma/ministry=enginerolls"
ROLL_TAG = "tizi/inference-service:0.1.0-roll"


@pytest.fixture(scope="module")
def rolls(engine_tools, tmp_path_factory):
    docker("tag", IMAGE, ROLL_TAG)
    project = local_copy(
        tmp_path_factory.mktemp("engine-rolls"), "unix:///var/run/docker.sock", PORT, "enginerolls", UNLIMITED
    )
    stack = project.stack("local")
    stack.up()
    assert wait_for(lambda: http_status(f"{URL}/readyz") == 200, timeout=30)
    yield project, stack
    stack.destroy()
    stack.workspace.remove_stack("local")
    docker("rmi", ROLL_TAG, check=False)


def container_names() -> set[str]:
    return {c["Name"].lstrip("/") for c in containers(LABEL)}


def test_new_image_tag_rolls_without_a_failed_request(rolls):
    project, stack = rolls
    key = project.api_keys("local")[0]
    before = container_names()
    stack.set_config(
        "tizi:service",
        auto.ConfigValue(
            value=json.dumps({"name": "inference", "image": ROLL_TAG, "port": 8080, "secrets": ["apiKeys"]})
        ),
    )
    with steady_client(f"{URL}/v1/models", key) as loop:
        result = stack.up()
    assert result.summary.resource_changes.get("replace", 0) >= 1
    after = container_names()
    assert len(after) == 1 and after != before, (before, after)
    roll_id = docker("image", "inspect", "-f", "{{.Id}}", ROLL_TAG).stdout.strip()
    assert [c["Config"]["Image"] for c in containers(LABEL)] == [roll_id], "the image is passed by ID"
    assert len(loop.statuses) > 50
    assert loop.failures == [], f"{len(loop.failures)} failed of {len(loop.statuses)}"


def test_rotated_keys_roll_without_a_failed_request(rolls):
    project, stack = rolls
    old = project.api_keys("local")
    new = "rotated-" + "k" * 24
    with steady_client(f"{URL}/v1/models", old[0]) as loop:
        stack.set_config("tizi:apiKeys", auto.ConfigValue(value=f"{old[0]},{new}", secret=True))
        stack.up()
    assert len(loop.statuses) > 50, "the client must span the roll"
    assert loop.failures == [], f"{len(loop.failures)} failed of {len(loop.statuses)}"
    assert http_status(f"{URL}/v1/models", new) == 200, "the new key works after the roll"
    assert http_status(f"{URL}/v1/models", old[1]) == 401, "a key removed from the stack no longer works"
    with steady_client(f"{URL}/v1/models", new) as loop:
        stack.set_config("tizi:apiKeys", auto.ConfigValue(value=new, secret=True))
        stack.up()
    assert len(loop.statuses) > 50 and loop.failures == []
    assert http_status(f"{URL}/v1/models", old[0]) == 401
    assert len(container_names()) == 1
    assert len(containers(LABEL, component="key-writer")) == 1, "the old key writer went with its keys"
