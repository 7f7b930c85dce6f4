"""Selector labels stay minimal and stable; metadata labels and annotations reach
every resource."""

from __future__ import annotations

import pytest

from .render import RELEASE, one, pod_spec, render_chart, with_base

pytestmark = pytest.mark.unit


SELECTOR_KEYS = {"app.kubernetes.io/name", "app.kubernetes.io/instance"}
METADATA_KEYS = SELECTOR_KEYS | {
    "app.kubernetes.io/managed-by",
    "app.kubernetes.io/version",
    "helm.sh/chart",
}


def test_selector_labels_are_only_name_and_instance() -> None:
    values = with_base(commonLabels={"tizi.ma/ministry": "sante"}, podLabels={"team": "ia"})
    docs = render_chart(values)
    dep = one(docs, "Deployment")
    selectors = {
        "Deployment": dep["spec"]["selector"]["matchLabels"],
        "Service": one(docs, "Service")["spec"]["selector"],
        "PodDisruptionBudget": one(docs, "PodDisruptionBudget")["spec"]["selector"]["matchLabels"],
        "NetworkPolicy": one(docs, "NetworkPolicy")["spec"]["podSelector"]["matchLabels"],
        "topologySpread": pod_spec(dep)["topologySpreadConstraints"][0]["labelSelector"]["matchLabels"],
    }
    for where, selector in selectors.items():
        assert selector == {
            "app.kubernetes.io/name": "inference-service",
            "app.kubernetes.io/instance": RELEASE,
        }, where
    # the pods carry what the selectors match, plus the extra labels
    pod_labels = dep["spec"]["template"]["metadata"]["labels"]
    assert selectors["Deployment"].items() <= pod_labels.items()
    assert pod_labels["team"] == "ia"


def test_metadata_labels_are_the_full_set_plus_common_labels() -> None:
    docs = render_chart(with_base(commonLabels={"tizi.ma/ministry": "sante"}))
    for doc in docs:
        labels = doc["metadata"]["labels"]
        assert set(labels) >= METADATA_KEYS, f"{doc['kind']}: {labels}"
        assert labels["helm.sh/chart"] == "inference-service-0.1.0"
        assert labels["tizi.ma/ministry"] == "sante"


def test_common_labels_cannot_change_the_selector_labels() -> None:
    docs = render_chart(with_base(commonLabels={"app.kubernetes.io/name": "other"}))
    assert one(docs, "Deployment")["metadata"]["labels"]["app.kubernetes.io/name"] == ("inference-service")


def test_common_annotations_on_every_resource() -> None:
    for doc in render_chart(with_base(commonAnnotations={"tizi.ma/owner": "dsi"})):
        assert doc["metadata"]["annotations"]["tizi.ma/owner"] == "dsi", doc["kind"]
