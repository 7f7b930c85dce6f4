"""The llm-local stack with the real engine: SmolLM2 through llama.cpp on this machine's Docker,
checked with the official OpenAI client (the conformance suite's checks)."""

from __future__ import annotations

import json

import pytest

from tests.conformance.contract import CHECKS, Target
from tests.conftest import require
from tests.engine_support import edit_stack, http_status, project_copy, wait_for

from .conftest import Project, containers, docker

PORT = 28181
URL = f"http://127.0.0.1:{PORT}"
LABEL = "tizi.ma/ministry=enginellm"
IMAGES = ("tizi/llm-server:0.1.0", "tizi/model-smollm2:0.1.0")
MODEL = "smollm2-135m-instruct"


@pytest.fixture(scope="module")
def llm(engine_tools, tmp_path_factory) -> tuple[Project, Target]:
    for image in IMAGES:
        require(
            docker("image", "inspect", image, check=False).returncode == 0,
            f"{image} missing: scripts/build-llm-image.sh and scripts/build-model-image.sh",
        )
    root = tmp_path_factory.mktemp("engine-llm")
    work_dir = project_copy(root / "project", ["llm-local"])

    def change(config: dict) -> None:
        config["tizi:ministry"] = "enginellm"
        config["tizi:targets"][0]["hostPort"] = PORT

    edit_stack(work_dir, "llm-local", change)
    project = Project(work_dir, root / "state")
    stack = project.stack("llm-local")
    result = stack.up()
    assert result.outputs["endpoints"].value == {"edge-llm": URL}
    assert wait_for(lambda: http_status(f"{URL}/readyz") == 200, timeout=120)
    yield project, Target("edge-llm", URL, project.api_keys("llm-local")[0], MODEL, "llm")
    stack.destroy()
    stack.workspace.remove_stack("llm-local")


@pytest.mark.parametrize("check", sorted(CHECKS))
def test_the_llm_on_the_edge_serves_the_openai_contract(llm, check: str) -> None:
    CHECKS[check](llm[1])


def test_every_key_of_the_stack_works(llm) -> None:
    project, _ = llm
    for key in project.api_keys("llm-local"):
        assert http_status(f"{URL}/v1/models", key) == 200


def test_weights_come_read_only_from_the_model_image_and_no_key_is_in_inspect(llm) -> None:
    project, _ = llm
    [container] = containers(LABEL)
    mounts = {m["Destination"]: m for m in container["Mounts"]}
    assert mounts["/var/cache/tizi/models"]["RW"] is False
    [loader] = containers(LABEL, component="model-loader")
    assert loader["State"]["Status"] == "created", "the loader never runs: Docker copies at create"
    assert loader["Mounts"][0]["Name"] == mounts["/var/cache/tizi/models"]["Name"]
    assert container["HostConfig"]["ReadonlyRootfs"] is True and container["Config"]["User"] == "10001:10001"
    inspected = json.dumps(container)
    assert not [k for k in project.api_keys("llm-local") if k in inspected]


def test_a_second_up_changes_nothing(llm) -> None:
    project, _ = llm
    result = project.stack("llm-local").up()
    assert set(result.summary.resource_changes) == {"same"}, result.summary.resource_changes
