"""knative mode: a Knative Service replaces the Deployment, HPA, Service and PDB,
and uses only the PodSpec fields Knative Serving admits."""

from __future__ import annotations

import pytest

from .render import (
    KNATIVE_API,
    ci_values,
    container,
    deployment,
    kinds,
    one,
    pod_spec,
    render_chart,
    serving_container,
    with_base,
)

pytestmark = pytest.mark.unit


# Knative Serving's PodSpec allowlist (pkg/apis/serving/fieldmask.go), with the
# feature-flagged fields (affinity, nodeSelector, tolerations, securityContext).
KNATIVE_POD_FIELDS = {
    "serviceAccountName",
    "containers",
    "volumes",
    "imagePullSecrets",
    "enableServiceLinks",
    "automountServiceAccountToken",
    "containerConcurrency",
    "timeoutSeconds",
    "affinity",
    "nodeSelector",
    "tolerations",
    "securityContext",
}
KNATIVE_CONTAINER_FIELDS = {
    "name",
    "args",
    "command",
    "env",
    "workingDir",
    "envFrom",
    "image",
    "imagePullPolicy",
    "livenessProbe",
    "ports",
    "readinessProbe",
    "resources",
    "securityContext",
    "terminationMessagePath",
    "terminationMessagePolicy",
    "volumeMounts",
}
KNATIVE_POD_SECURITY_FIELDS = {
    "runAsUser",
    "runAsGroup",
    "runAsNonRoot",
    "fsGroup",
    "supplementalGroups",
}


def _knative_docs() -> list[dict]:
    return render_chart(ci_values("knative"))


def test_knative_replaces_deployment_hpa_service_and_pdb() -> None:
    docs = _knative_docs()
    assert kinds(docs) == {
        ("v1", "ConfigMap"),
        ("v1", "ServiceAccount"),
        ("networking.k8s.io/v1", "NetworkPolicy"),
        (KNATIVE_API, "Service"),
    }


def test_knative_autoscaling_annotations_and_concurrency() -> None:
    ksvc = one(_knative_docs(), "Service", KNATIVE_API)
    template = ksvc["spec"]["template"]
    annotations = template["metadata"]["annotations"]
    assert annotations["autoscaling.knative.dev/min-scale"] == "0"
    assert annotations["autoscaling.knative.dev/max-scale"] == "5"
    assert annotations["autoscaling.knative.dev/target"] == "10"
    assert "checksum/config" in annotations
    assert template["spec"]["containerConcurrency"] == 20


def test_knative_uses_only_fields_knative_accepts() -> None:
    spec = one(_knative_docs(), "Service", KNATIVE_API)["spec"]["template"]["spec"]
    assert set(spec) <= KNATIVE_POD_FIELDS
    assert set(spec.get("securityContext", {})) <= KNATIVE_POD_SECURITY_FIELDS
    for ctr in spec["containers"]:
        assert set(ctr) <= KNATIVE_CONTAINER_FIELDS, ctr["name"]
        assert "PORT" not in {e["name"] for e in ctr.get("env", [])}  # reserved by Knative
    # one serving port in the pod: the gateway's; the payload has none
    assert [[p["name"] for p in c.get("ports", [])] for c in spec["containers"]] == [[], ["http1"]]
    serving = spec["containers"][1]
    for probe in ("livenessProbe", "readinessProbe"):
        assert "port" not in serving[probe]["httpGet"], probe


def test_knative_container_matches_the_deployment_container() -> None:
    ksvc = one(_knative_docs(), "Service", KNATIVE_API)
    ksvc_ctr = container(ksvc)
    dep_ctr = container(deployment(with_base(model=ci_values("knative")["model"])))
    for field in ("image", "securityContext", "resources", "volumeMounts", "envFrom"):
        assert ksvc_ctr[field] == dep_ctr[field], field
    # Knative probes the payload through the gateway, on the same path
    serving = serving_container(ksvc)
    assert serving["readinessProbe"]["httpGet"]["path"] == dep_ctr["readinessProbe"]["httpGet"]["path"]


def test_knative_liveness_waits_out_the_startup_budget() -> None:
    ctr = serving_container(one(_knative_docs(), "Service", KNATIVE_API))
    # startup defaults: initialDelaySeconds 0 + periodSeconds 1 x failureThreshold 600
    assert ctr["livenessProbe"]["initialDelaySeconds"] == 600


def test_knative_network_policy_admits_the_activator() -> None:
    rule = one(_knative_docs(), "NetworkPolicy")["spec"]["ingress"][0]
    allowed = [
        f["namespaceSelector"]["matchLabels"]["kubernetes.io/metadata.name"]
        for f in rule["from"]
        if "namespaceSelector" in f
    ]
    assert allowed == ["kourier-system", "knative-serving"]
    assert "ports" not in rule  # Knative's queue-proxy listens on its own ports


def test_knative_keeps_region_and_gpu_placement() -> None:
    values = with_base(
        knative={"enabled": True}, placement={"region": "ma-benguerir"}, gpu={"count": 1, "type": "NVIDIA-L4"}
    )
    spec = pod_spec(one(render_chart(values), "Service", KNATIVE_API))
    assert "affinity" in spec and "tolerations" in spec
    assert spec["nodeSelector"] == {"nvidia.com/gpu.product": "NVIDIA-L4"}
    assert spec["containers"][0]["resources"]["limits"]["nvidia.com/gpu"] == "1"
