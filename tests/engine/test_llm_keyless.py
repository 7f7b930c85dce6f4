"""llama.cpp's own server, taking no key at all, behind the edge gateway: the gateway alone
checks the keys, and a roll (new settings, rotated keys) under a steady client loses nothing,
although llama.cpp's server neither checks keys nor shares its port (no SO_REUSEPORT).

The stack is llm-local with ``runtime: custom``: the image's ``python3 -m llama_cpp.server``
run as upstream ships it, with the weights from the model image.
"""

from __future__ import annotations

import itertools
import json

import pytest

from tests.conftest import require
from tests.engine_support import edit_stack, http_status, project_copy, steady_client, wait_for

from .conftest import UNLIMITED, Project, docker

PORT = 28191
URL = f"http://127.0.0.1:{PORT}"
MODEL_PATH = "/var/cache/tizi/models/SmolLM2-135M-Instruct.Q4_1.gguf"


def upstream_server(config: dict) -> None:
    config["tizi:ministry"] = "enginekeyless"
    config["tizi:targets"][0].update(hostPort=PORT, metricsPort=PORT + 1)
    config["tizi:gateway"] = UNLIMITED
    config["tizi:service"] = {
        "name": "inference",
        "runtime": "custom",
        "image": "tizi/llm-server:0.1.0",
        "command": ["python3", "-m", "llama_cpp.server"],
        "args": ["--model", MODEL_PATH, "--model_alias", "smollm2", "--host", "0.0.0.0", "--port", "8080",
                 "--n_threads", "1", "--n_ctx", "512"],
        "port": 8080,
        # FastAPI's docs page: llama.cpp's server has no health route of its own
        "health": {"startup": "/docs", "liveness": "/docs", "readiness": "/docs"},
        "secrets": ["apiKeys"],
    }  # fmt: skip


@pytest.fixture(scope="module")
def keyless(engine_tools, tmp_path_factory):
    for image in ("tizi/llm-server:0.1.0", "tizi/model-smollm2:0.1.0"):
        require(docker("image", "inspect", image, check=False).returncode == 0, f"{image} missing")
    root = tmp_path_factory.mktemp("engine-keyless")
    work_dir = project_copy(root / "project", ["llm-local"])
    edit_stack(work_dir, "llm-local", upstream_server)
    project = Project(work_dir, root / "state")
    stack = project.stack("llm-local")
    stack.up()
    assert wait_for(lambda: http_status(f"{URL}/docs") == 200, timeout=120)
    yield project, stack
    stack.destroy()
    stack.workspace.remove_stack("llm-local")


def test_the_payload_takes_no_key_but_the_gateway_does(keyless):
    project, _ = keyless
    payload = [
        c for c in docker("ps", "--format", "{{.Names}}").stdout.split() if c.startswith("tizi-enginekeyless")
    ]
    server = next(name for name in payload if not name.endswith(("-gateway",)) and "-config-" not in name)
    # straight to llama.cpp's server inside its network namespace: no key needed
    probe = "import urllib.request as u; print(u.urlopen('http://127.0.0.1:8080/v1/models').status)"
    direct = docker("exec", server, "python3", "-c", probe)
    assert direct.stdout.strip() == "200"
    assert http_status(f"{URL}/v1/models") == 401
    assert http_status(f"{URL}/v1/models", "sk-wrong-000000000000") == 401
    assert http_status(f"{URL}/v1/models", project.api_keys("llm-local")[0]) == 200


def test_settings_roll_and_key_rotation_lose_no_request(keyless):
    project, stack = keyless
    old = project.api_keys("llm-local")
    config = json.loads(stack.get_config("tizi:service").value)
    config["env"] = {"TIZI_ROLL": "1"}
    stack.set_config("tizi:service", __import__("pulumi").automation.ConfigValue(value=json.dumps(config)))
    with steady_client(f"{URL}/v1/models", old[0]) as loop:
        result = stack.up()
    assert result.summary.resource_changes.get("replace", 0) >= 1
    assert len(loop.statuses) > 50 and loop.failures == [], f"{len(loop.failures)} of {len(loop.statuses)}"

    # rotation: keep the first key, replace the others; the client uses the kept one
    rotated = [old[0], "sk-rotated-" + "7" * 32]
    stack.set_config(
        "tizi:apiKeys", __import__("pulumi").automation.ConfigValue(value=",".join(rotated), secret=True)
    )
    with steady_client(f"{URL}/v1/models", old[0]) as loop:
        stack.up()
    assert len(loop.statuses) > 50 and loop.failures == [], f"{len(loop.failures)} of {len(loop.statuses)}"
    assert http_status(f"{URL}/v1/models", rotated[1]) == 200
    assert all(http_status(f"{URL}/v1/models", gone) == 401 for gone in old[1:])


def test_a_stream_passes_through_the_gateway_unbuffered(keyless):
    """Tokens arrive as llama.cpp makes them: spread over the answer's time, not at its end."""
    import http.client
    import time

    project, _ = keyless
    conn = http.client.HTTPConnection("127.0.0.1", PORT, timeout=60)
    body = {"model": "smollm2", "messages": [{"role": "user", "content": "Tell a long story."}],
            "stream": True, "max_tokens": 64, "temperature": 0}  # fmt: skip
    headers = {
        "Authorization": f"Bearer {project.api_keys('llm-local')[0]}",
        "Content-Type": "application/json",
    }
    conn.request("POST", "/v1/chat/completions", body=json.dumps(body), headers=headers)
    response = conn.getresponse()
    assert response.status == 200 and response.getheader("content-type", "").startswith("text/event-stream")
    arrivals = []
    while line := response.readline():
        if line.startswith(b"data: ") and line.strip() != b"data: [DONE]":
            arrivals.append(time.monotonic())
    conn.close()
    assert len(arrivals) >= 20, len(arrivals)
    spread = arrivals[-1] - arrivals[0]
    gaps = sorted(b - a for a, b in itertools.pairwise(arrivals))
    # a buffering proxy would hand every event over at once (spread ~0)
    assert spread > 0.2 and gaps[len(gaps) // 2] > 0.003, (spread, gaps[len(gaps) // 2])
