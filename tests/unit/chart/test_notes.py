"""NOTES.txt as `helm install` prints it: how to reach the service, and the
warnings for risky values."""

from __future__ import annotations

import pytest

from .render import BASE, NAMESPACE, RELEASE, SECRET, ci_values, render_notes, with_base

pytestmark = pytest.mark.unit


def test_notes_explain_port_forward_and_curl() -> None:
    notes = render_notes(BASE)
    assert f"kubectl port-forward --namespace {NAMESPACE} svc/{RELEASE}-inference-service" in notes
    assert f"kubectl get secret {SECRET}" in notes
    assert 'curl -sS http://127.0.0.1:8080/v1/models -H "Authorization: Bearer $TIZI_API_KEY"' in notes
    assert "WARNING" not in notes.replace("WARNING: pdb.minAvailable", "")


def test_notes_warn_about_rolling_tags() -> None:
    assert "rolling tag" in render_notes(with_base(image={"tag": "latest"}))
    pinned = with_base(image={"tag": "latest", "digest": "sha256:" + "b" * 64})
    assert "rolling tag" not in render_notes(pinned)


def test_notes_warn_about_gpu_without_limits() -> None:
    values = with_base(gpu={"count": 1, "type": "NVIDIA-L4"}, resources={"limits": None})
    assert "GPU(s) requested but resources.limits" in render_notes(values)
    assert "GPU(s) requested" not in render_notes(ci_values("gpu"))


def test_notes_warn_about_knative_mode() -> None:
    notes = render_notes(ci_values("knative"))
    assert "knative mode renders a Knative Service" in notes
    assert "kubernetes.podspec-securitycontext" in notes
    assert "kubectl get ksvc" in notes
