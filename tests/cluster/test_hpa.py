"""The HPA on real metrics: metrics-server v0.8.0 (scripts/cluster/metrics-server.sh) serves
metrics.k8s.io through the aggregation layer, and the chart's HPA scales out under a bounded CPU
load and back in when it stops. Installed with `helm install` alone, with a short scale-down
window so the test does not wait Kubernetes' default five minutes."""

from __future__ import annotations

import json
import threading
import time
import urllib.request

import pytest

from tests.conftest import require
from tests.engine_support import run, wait_for

from .helm_alone import chart_alone

NAMESPACE = "tizi-hpa-test"
KEY = "hpa-key-0123456789abcdef"


@pytest.fixture(scope="module")
def release(kube_context, core, tmp_path_factory):
    served = run(
        "kubectl",
        "--context",
        kube_context,
        "get",
        "--raw",
        "/apis/metrics.k8s.io/v1beta1/nodes",
        check=False,
    )
    require(served.returncode == 0, "metrics.k8s.io is not served: scripts/cluster/metrics-server.sh install")
    values = {
        "pdb": {"enabled": False},
        "gateway": {"requestsPerMinute": 100_000, "burst": 10_000},
        "autoscaling": {"enabled": True, "minReplicas": 1, "maxReplicas": 3,
                        "targetCPUUtilizationPercentage": 50, "scaleDownStabilizationSeconds": 15},
    }  # fmt: skip
    with chart_alone(kube_context, NAMESPACE, [KEY], values, tmp_path_factory.mktemp("hpa")):
        yield "http://" + core.CoreV1Api().read_namespaced_service("inference", NAMESPACE).spec.cluster_ip


def replicas(core) -> int:
    return core.AppsV1Api().read_namespaced_deployment("inference", NAMESPACE).spec.replicas


def load(url: str, stop: threading.Event, clients: int = 6) -> None:
    body = json.dumps(
        {"model": "tizi-langid-ma", "messages": [{"role": "user", "content": "salam, kidayr labas?"}]}
    )
    headers = {"Authorization": f"Bearer {KEY}", "Content-Type": "application/json"}

    def client() -> None:
        while not stop.is_set():
            request = urllib.request.Request(
                f"{url}/v1/chat/completions", data=body.encode(), headers=headers
            )
            try:
                urllib.request.urlopen(request, timeout=5).read()
            except OSError:
                time.sleep(0.05)

    threads = [threading.Thread(target=client, daemon=True) for _ in range(clients)]
    for thread in threads:
        thread.start()


def test_the_hpa_scales_out_under_cpu_load_and_back_in(release, core):
    assert replicas(core) == 1
    stop = threading.Event()
    started = time.monotonic()
    load(release, stop)
    try:
        assert wait_for(lambda: replicas(core) >= 2, timeout=240, interval=2), "never scaled out"
        scaled_out = time.monotonic() - started
    finally:
        stop.set()
    stopped = time.monotonic()
    assert wait_for(lambda: replicas(core) == 1, timeout=300, interval=2), "never scaled back in"
    scaled_in = time.monotonic() - stopped
    hpa = core.AutoscalingV2Api().read_namespaced_horizontal_pod_autoscaler("inference", NAMESPACE)
    events = core.CoreV1Api().list_namespaced_event(
        NAMESPACE, field_selector="involvedObject.kind=HorizontalPodAutoscaler"
    )
    reasons = [e.reason for e in events.items]
    print(f"\nhpa: out {scaled_out:.0f} s after the load began, in {scaled_in:.0f} s after it ended")
    assert "SuccessfulRescale" in reasons, reasons
    assert hpa.status.current_metrics, "the HPA read CPU from metrics.k8s.io"
