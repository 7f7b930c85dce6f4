"""The shape of the workload: model config, config checksum, image, probes,
replicas (HPA or fixed), disruption budget and service account."""

from __future__ import annotations

import copy

import pytest

from .render import BASE, container, deployment, find, one, pod_spec, render_chart, with_base

pytestmark = pytest.mark.unit


def test_model_surfaces_as_env_and_pod_annotations() -> None:
    values = with_base(
        model={"name": "atlas-chat-2b", "source": "hf://x/y", "languages": ["ary", "fr"]},
        env={"TIZI_LOG_LEVEL": "debug", "WORKERS": 2},
    )
    docs = render_chart(values)
    data = next(d for d in docs if d["kind"] == "ConfigMap" and d["metadata"]["name"].endswith("-env"))[
        "data"
    ]
    assert data["TIZI_MODEL_NAME"] == "atlas-chat-2b"
    assert data["TIZI_MODEL_LANGUAGES"] == "ary,fr"
    assert data["TIZI_LOG_LEVEL"] == "debug"
    assert data["WORKERS"] == "2"
    dep = one(docs, "Deployment")
    assert container(dep)["envFrom"] == [{"configMapRef": {"name": env_config_map(docs)["metadata"]["name"]}}]
    annotations = dep["spec"]["template"]["metadata"]["annotations"]
    assert annotations["tizi.ma/model-name"] == "atlas-chat-2b"
    assert annotations["tizi.ma/model-languages"] == "ary,fr"


def test_config_checksum_changes_with_the_config() -> None:
    def checksum(values: dict) -> str:
        return deployment(values)["spec"]["template"]["metadata"]["annotations"]["checksum/config"]

    assert checksum(BASE) == checksum(copy.deepcopy(BASE))
    assert checksum(BASE) != checksum(with_base(env={"TIZI_LOG_LEVEL": "debug"}))
    assert checksum(BASE) != checksum(with_base(model={"name": "other"}))


def test_image_digest_replaces_the_tag() -> None:
    digest = "sha256:" + "a" * 64
    assert container(deployment(BASE))["image"] == "tizi/inference-service:0.1.0"
    pinned = with_base(image={"digest": digest})
    assert container(deployment(pinned))["image"] == f"tizi/inference-service@{digest}"


def test_probe_paths_are_configurable() -> None:
    values = with_base(probes={"readiness": {"path": "/v1/ready"}, "startup": {"path": "/up"}})
    ctr = container(deployment(values))
    assert ctr["readinessProbe"]["httpGet"] == {"path": "/v1/ready", "port": "payload"}
    assert ctr["startupProbe"]["httpGet"]["path"] == "/up"
    assert ctr["livenessProbe"]["httpGet"]["path"] == "/healthz"


def test_hpa_owns_replicas_when_autoscaling() -> None:
    docs = render_chart(BASE)
    assert "replicas" not in one(docs, "Deployment")["spec"]
    hpa = one(docs, "HorizontalPodAutoscaler")
    assert hpa["spec"]["minReplicas"] == 1
    assert hpa["spec"]["maxReplicas"] == 3
    assert hpa["spec"]["metrics"][0]["resource"]["target"] == {
        "type": "Utilization",
        "averageUtilization": 70,
    }


def test_replica_count_when_autoscaling_disabled() -> None:
    docs = render_chart(with_base(autoscaling={"enabled": False}, replicaCount=2))
    assert one(docs, "Deployment")["spec"]["replicas"] == 2
    assert not find(docs, "HorizontalPodAutoscaler")


@pytest.mark.parametrize(
    ("pdb", "expected"),
    [
        ({}, {"minAvailable": 1}),
        ({"minAvailable": "50%"}, {"minAvailable": "50%"}),
        ({"maxUnavailable": 1}, {"maxUnavailable": 1}),
    ],
    ids=["default-minAvailable", "percentage", "maxUnavailable-wins"],
)
def test_pdb_budget(pdb: dict, expected: dict) -> None:
    spec = one(render_chart(with_base(pdb=pdb)), "PodDisruptionBudget")["spec"]
    spec.pop("selector")
    assert spec == expected


def test_service_account_name_and_token() -> None:
    docs = render_chart(with_base(serviceAccount={"create": False, "name": "shared"}))
    assert not find(docs, "ServiceAccount")
    assert pod_spec(one(docs, "Deployment"))["serviceAccountName"] == "shared"
    assert pod_spec(one(docs, "Deployment"))["automountServiceAccountToken"] is False


def env_config_map(docs: list[dict]) -> dict:
    """The payload's environment (the gateway has ConfigMaps of its own)."""
    (found,) = [d for d in docs if d["kind"] == "ConfigMap" and d["metadata"]["name"].endswith("-env")]
    return found
