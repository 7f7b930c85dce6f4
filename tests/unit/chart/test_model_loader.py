"""Weights as an artifact: a model image feeds the model cache through a restricted init container."""

from __future__ import annotations

import pytest

from .render import HelmError, deployment, pod_spec, render_chart, validate_document, with_base

pytestmark = pytest.mark.unit

MODEL_IMAGE = "tizi/model-smollm2:0.1.0"


def test_no_model_image_no_init_container() -> None:
    assert "initContainers" not in pod_spec(deployment(with_base()))


def test_the_model_image_is_copied_into_the_model_cache_before_the_server_starts() -> None:
    workload = deployment(with_base(model={"image": MODEL_IMAGE}))
    validate_document(workload)
    [loader] = pod_spec(workload)["initContainers"]
    assert loader["image"] == MODEL_IMAGE
    assert loader["command"] == ["cp", "-R", "/model/.", "/var/cache/tizi/models"]
    assert loader["volumeMounts"] == [{"name": "model-cache", "mountPath": "/var/cache/tizi/models"}]
    context = loader["securityContext"]
    assert context["runAsNonRoot"] is True and context["readOnlyRootFilesystem"] is True
    assert context["allowPrivilegeEscalation"] is False and context["capabilities"] == {"drop": ["ALL"]}
    assert loader["resources"]["limits"]["memory"] == "128Mi"


def test_a_model_image_with_knative_is_refused_with_the_reason() -> None:
    with pytest.raises(HelmError, match=r"kubernetes\.podspec-init-containers"):
        render_chart(with_base(model={"image": MODEL_IMAGE}, knative={"enabled": True}))


@pytest.mark.parametrize("image", ["UPPER/case:1", "a b", "x:latest\n", "-x"])
def test_a_malformed_model_image_fails_the_schema(image: str) -> None:
    with pytest.raises(HelmError, match="image"):
        render_chart(with_base(model={"image": image}))


def test_a_model_image_with_knative_renders_the_loader_when_init_containers_are_allowed() -> None:
    docs = render_chart(
        with_base(model={"image": MODEL_IMAGE}, knative={"enabled": True, "initContainers": True})
    )
    [ksvc] = [d for d in docs if d["apiVersion"].startswith("serving.knative.dev")]
    validate_document(ksvc)
    spec = ksvc["spec"]["template"]["spec"]
    [loader] = spec["initContainers"]
    assert loader["image"] == MODEL_IMAGE
    assert {"name": "model-cache", "mountPath": "/var/cache/tizi/models"} in loader["volumeMounts"]
    assert "model-cache" in [v["name"] for v in spec["volumes"]]
