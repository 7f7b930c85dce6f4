"""Where pods land: region node affinity, GPU resources, tolerations and node
selector, topology spread."""

from __future__ import annotations

import pytest

from .render import BASE, deployment, pod_spec, with_base

pytestmark = pytest.mark.unit


def test_no_node_affinity_without_region() -> None:
    assert "affinity" not in pod_spec(deployment(BASE))


def test_region_adds_required_node_affinity() -> None:
    spec = pod_spec(deployment(with_base(placement={"region": "ma-benguerir"})))
    required = spec["affinity"]["nodeAffinity"]["requiredDuringSchedulingIgnoredDuringExecution"]
    assert required["nodeSelectorTerms"] == [
        {
            "matchExpressions": [
                {
                    "key": "topology.kubernetes.io/region",
                    "operator": "In",
                    "values": ["ma-benguerir"],
                }
            ]
        }
    ]


def test_region_is_anded_into_user_node_affinity() -> None:
    zone = {"key": "topology.kubernetes.io/zone", "operator": "In", "values": ["a"]}
    affinity = {
        "nodeAffinity": {
            "requiredDuringSchedulingIgnoredDuringExecution": {
                "nodeSelectorTerms": [{"matchExpressions": [zone]}, {"matchFields": []}]
            }
        }
    }
    values = with_base(placement={"region": "ma-benguerir"}, affinity=affinity)
    spec = pod_spec(deployment(values))
    terms = spec["affinity"]["nodeAffinity"]["requiredDuringSchedulingIgnoredDuringExecution"][
        "nodeSelectorTerms"
    ]
    assert len(terms) == 2
    for term in terms:  # every ORed term is narrowed to the region
        assert {
            "key": "topology.kubernetes.io/region",
            "operator": "In",
            "values": ["ma-benguerir"],
        } in term["matchExpressions"]
    assert zone in terms[0]["matchExpressions"]


def test_gpu_adds_limits_requests_toleration_and_node_selector() -> None:
    values = with_base(gpu={"count": 2, "type": "NVIDIA-L4"})
    spec = pod_spec(deployment(values))
    res = spec["containers"][0]["resources"]
    assert res["limits"]["nvidia.com/gpu"] == "2"
    assert res["requests"]["nvidia.com/gpu"] == "2"
    assert res["limits"]["memory"] == "512Mi"  # the rest of resources is kept
    assert {"key": "nvidia.com/gpu", "operator": "Exists", "effect": "NoSchedule"} in spec["tolerations"]
    assert spec["nodeSelector"] == {"nvidia.com/gpu.product": "NVIDIA-L4"}


def test_gpu_resource_name_and_label_are_configurable() -> None:
    values = with_base(
        gpu={
            "count": 1,
            "type": "MI300X",
            "resourceName": "amd.com/gpu",
            "typeLabel": "amd.com/gpu.product-name",
        }
    )
    spec = pod_spec(deployment(values))
    assert spec["containers"][0]["resources"]["limits"]["amd.com/gpu"] == "1"
    assert spec["tolerations"][-1]["key"] == "amd.com/gpu"
    assert spec["nodeSelector"] == {"amd.com/gpu.product-name": "MI300X"}


def test_no_gpu_by_default() -> None:
    spec = pod_spec(deployment(BASE))
    assert "nvidia.com/gpu" not in spec["containers"][0]["resources"]["limits"]
    assert "tolerations" not in spec
    assert "nodeSelector" not in spec


def test_topology_spread() -> None:
    tsc = pod_spec(deployment(BASE))["topologySpreadConstraints"]
    assert tsc[0]["topologyKey"] == "kubernetes.io/hostname"
    assert tsc[0]["whenUnsatisfiable"] == "ScheduleAnyway"
    off = pod_spec(deployment(with_base(topologySpread={"enabled": False})))
    assert "topologySpreadConstraints" not in off
