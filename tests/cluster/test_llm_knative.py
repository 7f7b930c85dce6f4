"""The LLM as a Knative target, for real: the llm-kind stack moved to Knative Serving v0.42.2
with scale to zero. SmolLM2's weights arrive by the model image's init container, which this
cluster's Knative allows (config-features kubernetes.podspec-init-containers, set by
scripts/cluster/knative-serving.sh; the target says so with ``initContainers: true``).

Through Traefik with a key: the OpenAI contract (the official client, with the Knative host
as Host header), then scale to zero and the cold start of the LLM measured from request to
first byte.
"""

from __future__ import annotations

import http.client
import json
import time
from collections.abc import Iterator
from datetime import UTC, datetime

import pytest

from tests.conformance.contract import CHECKS, Target
from tests.conftest import require
from tests.docker_support import docker
from tests.engine_support import edit_stack, project_copy, run, wait_for

from .knative_support import KnativeService, traefik_address

NAMESPACE = "tests-llm-knative"
KSVC = KnativeService(NAMESPACE)
MODEL = "smollm2-135m-instruct"
IMAGES = ("tizi/llm-server:0.1.0", "tizi/model-smollm2:0.1.0")


def set_llm_knative_target(config: dict) -> None:
    config["tizi:ministry"] = "tests"
    config["tizi:environment"] = "dev"
    config["tizi:targets"] = [
        {
            "kind": "knative",
            "name": "serverless",
            "context": "kind-tizi",
            "namespace": NAMESPACE,
            "initContainers": True,
        }
    ]
    config["tizi:scaling"] = {"min": 0, "max": 1, "targetConcurrency": 4}
    config["tizi:gateway"] = {"requestsPerMinute": 100_000, "burst": 10_000}


@pytest.fixture(scope="module")
def llm_knative(kube_context, core, tmp_path_factory) -> Iterator[dict]:
    from components.ops.engine import select_stack

    for image in IMAGES:
        built = docker("image", "inspect", image, check=False).returncode == 0
        require(built, f"{image} missing: make llm, then scripts/cluster.sh import-image {image}")
    flag = run(
        "kubectl", "--context", kube_context, "-n", "knative-serving", "get", "configmap", "config-features",
        "-o", "jsonpath={.data.kubernetes\\.podspec-init-containers}", check=False,
    )  # fmt: skip
    require(
        flag.stdout.strip() == "enabled",
        "Knative Serving with init containers enabled: scripts/cluster/knative-serving.sh install",
    )
    root = tmp_path_factory.mktemp("llm-knative")
    work_dir = project_copy(root / "project", ["llm-kind"])
    edit_stack(work_dir, "llm-kind", set_llm_knative_target)
    if kube_context != "kind-tizi":
        edit_stack(work_dir, "llm-kind", lambda c: c["tizi:targets"][0].update(context=kube_context))
    stack = select_stack("llm-kind", work_dir, state_dir=root / "state")
    started = time.monotonic()
    try:
        stack.up()
        assert wait_for(lambda: KSVC.ready(core), timeout=240), "the LLM's Knative Service never became Ready"
        ready_after = time.monotonic() - started
        yield {"traefik": traefik_address(core), "key": KSVC.first_key(core), "ready_after": ready_after}
    finally:
        KSVC.remove_pods_first(kube_context)
        stack.destroy()
        stack.workspace.remove_stack("llm-kind")


def _first_byte(traefik: str, key: str, timeout: float = 120) -> tuple[int, float, bytes]:
    """POST one chat completion through the ingress; seconds until the status line arrives."""
    body = json.dumps(
        {"model": MODEL, "messages": [{"role": "user", "content": "Say hello."}], "max_tokens": 8}
    )
    conn = http.client.HTTPConnection(traefik, 80, timeout=timeout)
    started = time.monotonic()
    try:
        conn.request(
            "POST",
            "/v1/chat/completions",
            body=body,
            headers={"Host": KSVC.host, "Authorization": f"Bearer {key}", "Content-Type": "application/json"},
        )
        response = conn.getresponse()
        first = time.monotonic() - started
        return response.status, first, response.read()
    finally:
        conn.close()


def _timeline(core, since: datetime) -> str:
    """Where a cold start went: seconds from the request to each step of the new pod."""
    [pod] = KSVC.serving_pods(core)
    steps = {"created": pod.metadata.creation_timestamp}
    for condition in pod.status.conditions or []:
        steps[condition.type] = condition.last_transition_time
    for status in (pod.status.init_container_statuses or []) + (pod.status.container_statuses or []):
        state = status.state.terminated or status.state.running
        if state is not None and state.started_at is not None:
            steps[f"{status.name} started"] = state.started_at
    ordered = sorted(steps.items(), key=lambda item: item[1])
    return "llm on knative, cold start timeline: " + ", ".join(
        f"{name} +{(at - since).total_seconds():.0f} s" for name, at in ordered
    )


@pytest.mark.parametrize("check", sorted(CHECKS))
def test_the_llm_on_knative_serves_the_openai_contract(llm_knative, check: str) -> None:
    target = Target(
        "knative-llm", f"http://{llm_knative['traefik']}", llm_knative["key"], MODEL, "llm", host=KSVC.host
    )
    CHECKS[check](target)


def test_the_weights_came_through_the_init_container(llm_knative, core) -> None:
    template = KSVC.resource(core)["spec"]["template"]["spec"]
    [loader] = template["initContainers"]
    assert loader["image"] == "tizi/model-smollm2:0.1.0"
    print(f"\nllm on knative: up to Ready in {llm_knative['ready_after']:.1f} s")


def test_the_llm_scales_to_zero_and_its_cold_start_is_measured(llm_knative, core) -> None:
    status, _, _ = _first_byte(llm_knative["traefik"], llm_knative["key"])
    assert status == 200
    assert wait_for(lambda: KSVC.serving_pods(core) == [], timeout=180, interval=1), "never scaled to zero"
    # The last pod drains for 30 s (queue-proxy) and keeps its CPU until then; this 2-core node
    # has room for one LLM pod, so a new one would wait for it. Measure from zero pods.
    assert wait_for(lambda: KSVC.serving_pods(core, terminating=True) == [], timeout=120, interval=1)
    requested = datetime.now(UTC)
    status, cold, body = _first_byte(llm_knative["traefik"], llm_knative["key"])
    assert status == 200, body
    print("\n" + _timeline(core, requested))
    assert json.loads(body)["choices"][0]["message"]["content"], body
    assert KSVC.serving_pods(core), "a pod serves again"
    status, warm, _ = _first_byte(llm_knative["traefik"], llm_knative["key"])
    assert status == 200
    print(
        f"\nllm on knative: cold start {cold:.2f} s to first byte (8-token chat completion, "
        f"weights copied by the init container); warm {warm:.2f} s"
    )
    assert cold > warm
