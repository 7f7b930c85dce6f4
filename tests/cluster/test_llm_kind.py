"""The llm-kind stack on the real cluster: SmolLM2 through llama.cpp in a restricted pod, the
weights copied in by the model image's init container, the OpenAI contract checked through
the Service (kubectl port-forward) with the official client."""

from __future__ import annotations

import base64
import socket
import subprocess
from collections.abc import Iterator

import pytest

from tests.conformance.contract import CHECKS, Target
from tests.conftest import require
from tests.docker_support import docker
from tests.engine_support import http_status, project_copy, wait_for

NAMESPACE = "llmtests-dev"
SERVICE = "inference"
MODEL = "smollm2-135m-instruct"
IMAGES = ("tizi/llm-server:0.1.0", "tizi/model-smollm2:0.1.0")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture(scope="module")
def llm_kind(kube_context, core, tmp_path_factory) -> Iterator[Target]:
    from components.ops.engine import select_stack
    from tests.engine_support import edit_stack

    for image in IMAGES:  # `make cluster` imports them into the node's containerd
        built = docker("image", "inspect", image, check=False).returncode == 0
        require(built, f"{image} missing: make llm, then scripts/cluster.sh import-image {image}")
    work_dir = project_copy(tmp_path_factory.mktemp("llm-kind-project"), ["llm-kind"])
    if kube_context != "kind-tizi":
        edit_stack(work_dir, "llm-kind", lambda c: c["tizi:targets"][0].update(context=kube_context))
    stack = select_stack("llm-kind", work_dir, state_dir=tmp_path_factory.mktemp("llm-kind-state"))
    forward = None
    try:
        stack.up()
        secret = core.CoreV1Api().read_namespaced_secret(f"{SERVICE}-api-keys", NAMESPACE)
        key = base64.b64decode(sorted(secret.data.items())[0][1]).decode()
        port = _free_port()
        forward = subprocess.Popen(
            ["kubectl", "--context", kube_context, "-n", NAMESPACE, "port-forward", f"svc/{SERVICE}",
             f"{port}:80"],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )  # fmt: skip
        url = f"http://127.0.0.1:{port}"
        assert wait_for(lambda: http_status(f"{url}/readyz") == 200, timeout=60), (
            "port-forward never answered"
        )
        yield Target("kubernetes-llm", url, key, MODEL, "llm")
    finally:
        if forward is not None:
            forward.terminate()
            forward.wait(10)
        stack.destroy()
        stack.workspace.remove_stack("llm-kind")


@pytest.mark.parametrize("check", sorted(CHECKS))
def test_the_llm_on_kubernetes_serves_the_openai_contract(llm_kind: Target, check: str) -> None:
    CHECKS[check](llm_kind)


def test_the_weights_came_through_the_init_container_and_the_pod_is_restricted(llm_kind, core) -> None:
    [pod] = (
        core.CoreV1Api()
        .list_namespaced_pod(NAMESPACE, label_selector=f"app.kubernetes.io/instance={SERVICE}")
        .items
    )
    [loader] = pod.spec.init_containers
    assert loader.image == "tizi/model-smollm2:0.1.0"
    assert pod.status.init_container_statuses[0].state.terminated.exit_code == 0
    server = pod.spec.containers[0]
    assert server.security_context.run_as_non_root and server.security_context.read_only_root_filesystem
    # the spec's env travels in the chart's ConfigMap (envFrom): the digest the server checks
    [config_map] = [source.config_map_ref.name for source in server.env_from or [] if source.config_map_ref]
    data = core.CoreV1Api().read_namespaced_config_map(config_map, NAMESPACE).data
    assert len(data["TIZI_MODEL_SHA256"]) == 64 and data["TIZI_MODEL_FILE"].endswith(".gguf")
