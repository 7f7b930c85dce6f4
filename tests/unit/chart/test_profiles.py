"""The ci/ values profiles: one per deployment target, each renders objects the
Kubernetes API accepts and lints clean; and the set the default values render."""

from __future__ import annotations

import pytest

from .render import (
    BASE,
    CI_PROFILES,
    NAMESPACE,
    ci_values,
    kinds,
    lint_chart,
    render_chart,
    validate_document,
)

pytestmark = pytest.mark.unit


EXPECTED_PROFILES = ["gpu", "ingress", "knative", "kubernetes"]


def test_every_target_profile_has_a_ci_values_file() -> None:
    assert CI_PROFILES == EXPECTED_PROFILES


@pytest.mark.parametrize("profile", CI_PROFILES)
def test_ci_profile_renders_valid_kubernetes_objects(profile: str) -> None:
    docs = render_chart(ci_values(profile))
    assert docs
    for doc in docs:
        validate_document(doc)
        assert doc["metadata"]["namespace"] == NAMESPACE


@pytest.mark.parametrize("profile", CI_PROFILES)
def test_helm_lint_is_clean(profile: str) -> None:
    out = lint_chart(ci_values(profile))
    assert "0 chart(s) failed" in out
    assert "[WARNING]" not in out and "[ERROR]" not in out, out


def test_default_profile_renders_the_kubernetes_set() -> None:
    assert kinds(render_chart(BASE)) == {
        ("v1", "ConfigMap"),
        ("v1", "ServiceAccount"),
        ("v1", "Service"),
        ("apps/v1", "Deployment"),
        ("autoscaling/v2", "HorizontalPodAutoscaler"),
        ("policy/v1", "PodDisruptionBudget"),
        ("networking.k8s.io/v1", "NetworkPolicy"),
    }
