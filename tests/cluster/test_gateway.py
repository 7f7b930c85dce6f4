"""The gateway sidecar on a real cluster, installed by `helm install` alone: keys from the
Secret as files, per-key limits, metrics per key id, and a key rotation picked up by the
running gateway from the Secret volume, without restarting the pod."""

from __future__ import annotations

import base64
import hashlib
import re
import urllib.request

import pytest

from tests.engine_support import http_status, wait_for

from .helm_alone import chart_alone

NAMESPACE = "tizi-gateway-test"
KEYS = ["gw-key-one-0123456789abcdef", "gw-key-two-0123456789abcdef"]


def key_id(key: str) -> str:
    return "key-" + hashlib.sha256(key.encode()).hexdigest()[:10]


@pytest.fixture(scope="module")
def release(kube_context, core, tmp_path_factory):
    values = {
        "replicaCount": 1,
        "autoscaling": {"enabled": False},
        "pdb": {"enabled": False},
        "gateway": {"requestsPerMinute": 60, "burst": 5},
    }
    with chart_alone(kube_context, NAMESPACE, KEYS, values, tmp_path_factory.mktemp("gateway")):
        pod = core.CoreV1Api().list_namespaced_pod(
            NAMESPACE, label_selector="app.kubernetes.io/instance=inference"
        )
        pod_ip = next(p.status.pod_ip for p in pod.items if p.status.phase == "Running")
        service_ip = core.CoreV1Api().read_namespaced_service("inference", NAMESPACE).spec.cluster_ip
        yield f"http://{service_ip}", f"http://{pod_ip}:9095/metrics"


def fetch(url: str) -> str:
    with urllib.request.urlopen(url, timeout=5) as response:
        return response.read().decode()


def test_the_service_port_is_the_gateway_and_keys_come_from_the_secret(release):
    url, _ = release
    assert http_status(f"{url}/v1/models") == 401
    assert http_status(f"{url}/v1/models", "not-a-key-0000000000") == 401
    assert all(http_status(f"{url}/v1/models", key) == 200 for key in KEYS)


def test_each_key_is_limited_on_its_own_with_retry_after(release):
    url, _ = release
    statuses = [http_status(f"{url}/v1/models", KEYS[0]) for _ in range(12)]
    assert 429 in statuses, statuses
    request = urllib.request.Request(f"{url}/v1/models", headers={"Authorization": f"Bearer {KEYS[0]}"})
    with pytest.raises(urllib.error.HTTPError) as limited:
        urllib.request.urlopen(request, timeout=5)
    assert limited.value.code == 429 and limited.value.headers["Retry-After"] == "1"
    assert http_status(f"{url}/v1/models", KEYS[1]) == 200


def test_metrics_per_key_id_on_the_pod(release):
    _, metrics = release
    text = fetch(metrics)
    for key in KEYS:
        assert re.search(
            rf'^envoy_cluster_upstream_rq_total{{envoy_cluster_name="{key_id(key)}"}} [1-9]', text, re.M
        )
        assert key not in text
    assert re.search(r"^envoy_http_local_rate_limit_rate_limited\{.*ratelimit_" + key_id(KEYS[0]), text, re.M)


def test_a_rotated_secret_reaches_the_running_gateway(release, kube_context, core):
    url, _ = release
    new_key = "gw-key-three-0123456789abcdef"
    patch = {"data": {"key-1": base64.b64encode(new_key.encode()).decode()}}
    core.CoreV1Api().patch_namespaced_secret("inference-api-keys", NAMESPACE, patch)
    # the kubelet refreshes secret volumes within its sync period (about a minute)
    assert wait_for(lambda: http_status(f"{url}/v1/models", new_key) == 200, timeout=150, interval=2)
    assert http_status(f"{url}/v1/models", KEYS[1]) == 401
    pods = core.CoreV1Api().list_namespaced_pod(
        NAMESPACE, label_selector="app.kubernetes.io/instance=inference"
    )
    restarts = [s.restart_count for p in pods.items for s in p.status.container_statuses or []]
    assert restarts and not any(restarts), "no container restarted"
