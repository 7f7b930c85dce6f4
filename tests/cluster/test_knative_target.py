"""The Knative target for real: `pulumi up` of a stack whose target is Knative, on Knative
Serving v0.42.2's own controller with Traefik as its ingress (scripts/cluster/knative-serving.sh).

The Knative Service becomes Ready, answers through the ingress with a key (the gateway is its
serving container), scales to zero when idle, and comes back on the next request: the cold
start is measured, and a client loop spanning the scale-up loses nothing.
"""

from __future__ import annotations

import http.client
import json
import time

import pytest

from tests.conformance.contract import CHECKS, LANGID_NOT_APPLICABLE, Target
from tests.conftest import require
from tests.engine_support import edit_stack, project_copy, run, wait_for

from .knative_support import KnativeService, traefik_address

NAMESPACE = "tests-knative"
KSVC = KnativeService(NAMESPACE)


def set_knative_target(config: dict) -> None:
    config["tizi:targets"] = [
        {"kind": "knative", "name": "serverless", "context": "kind-tizi", "namespace": NAMESPACE}
    ]
    config["tizi:scaling"] = {"min": 0, "max": 2, "targetConcurrency": 10}
    config["tizi:gateway"] = {"requestsPerMinute": 100_000, "burst": 10_000}


@pytest.fixture(scope="module")
def knative(kube_context, core, tmp_path_factory):
    from components.ops.engine import select_stack

    installed = run(
        "kubectl",
        "--context",
        kube_context,
        "-n",
        "knative-serving",
        "get",
        "deploy",
        "controller",
        check=False,
    )
    require(
        installed.returncode == 0,
        "Knative Serving is not installed: scripts/cluster/knative-serving.sh install",
    )
    root = tmp_path_factory.mktemp("knative-target")
    work_dir = project_copy(root / "project", ["kind"])
    edit_stack(work_dir, "kind", set_knative_target)
    stack = select_stack("kind", work_dir, state_dir=root / "state")
    started = time.monotonic()
    try:
        result = stack.up()
        assert wait_for(lambda: KSVC.ready(core), timeout=180), "the Knative Service never became Ready"
        ready_after = time.monotonic() - started
        yield {
            "stack": stack,
            "result": result,
            "traefik": traefik_address(core),
            "key": KSVC.first_key(core),
            "ready_after": ready_after,
        }
    finally:
        KSVC.remove_pods_first(kube_context)
        stack.destroy()
        stack.workspace.remove_stack("kind")


def through_ingress(
    traefik: str, path: str, key: str | None, timeout: float = 30
) -> tuple[int, bytes, float]:
    conn = http.client.HTTPConnection(traefik, 80, timeout=timeout)
    headers = {"Host": KSVC.host, **({"Authorization": f"Bearer {key}"} if key else {})}
    started = time.monotonic()
    try:
        conn.request("GET", path, headers=headers)
        response = conn.getresponse()
        body = response.read()
        return response.status, body, time.monotonic() - started
    except OSError:
        return 0, b"", time.monotonic() - started
    finally:
        conn.close()


def test_the_knative_service_answers_through_the_ingress_with_a_key(knative):
    status, body, _ = through_ingress(knative["traefik"], "/v1/models", knative["key"])
    assert status == 200, body
    assert json.loads(body)["data"], body
    status, body, _ = through_ingress(knative["traefik"], "/v1/models", None)
    assert status == 401 and json.loads(body)["error"]["code"] == "invalid_api_key"
    print(f"\nknative: up to Ready in {knative['ready_after']:.1f} s")


@pytest.mark.parametrize("check", sorted(set(CHECKS) - set(LANGID_NOT_APPLICABLE)))
def test_the_knative_route_serves_the_openai_contract(knative, check: str) -> None:
    """The checks that apply to the langid payload (the LLM's full suite on Knative is in
    test_llm_knative.py), through Traefik with the Knative host."""
    target = Target(
        "knative-langid",
        f"http://{knative['traefik']}",
        knative["key"],
        "tizi-langid-ma",
        "langid",
        host=KSVC.host,
    )
    CHECKS[check](target)


def test_idle_scales_to_zero_then_the_first_request_brings_it_back(knative, core):
    through_ingress(knative["traefik"], "/v1/models", knative["key"])
    assert wait_for(lambda: KSVC.serving_pods(core) == [], timeout=120, interval=1), "never scaled to zero"
    status, _, cold = through_ingress(knative["traefik"], "/v1/models", knative["key"], timeout=60)
    assert status == 200
    assert KSVC.serving_pods(core), "a pod serves again"
    print(f"\nknative: cold start (request to response, langid payload through the gateway) {cold:.2f} s")
    assert cold < 30


def test_a_client_loop_spanning_a_scale_up_loses_nothing(knative, core):
    assert wait_for(lambda: KSVC.serving_pods(core) == [], timeout=120, interval=1), "never scaled to zero"
    statuses = []
    deadline = time.monotonic() + 15
    while time.monotonic() < deadline:
        statuses.append(through_ingress(knative["traefik"], "/v1/models", knative["key"], timeout=60)[0])
    assert len(statuses) > 20 and set(statuses) == {200}, statuses[:20]
