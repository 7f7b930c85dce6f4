"""Stack-wide labels (ministry, env, data class, region) applied by one resource transform.

A transform registered once by the program adds them to every Kubernetes object's
metadata and every Docker resource, so a resource a future component adds is labelled
without anyone remembering to.  Components add only what differs per resource (the
target's name, an edge site's region, the Pod Security labels of a namespace); a
resource's own label wins over the stack's.  The keys are owned by ``spec.labels``.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import pulumi

_DOCKER_LABELLED = (
    "docker:index/container:Container",
    "docker:index/volume:Volume",
    "docker:index/network:Network",
)


def _with_k8s_labels(props: Mapping[str, Any], labels: Mapping[str, str]) -> dict[str, Any] | None:
    metadata = props.get("metadata")
    if not isinstance(metadata, Mapping):
        return None
    existing = metadata.get("labels") or {}
    if not isinstance(existing, Mapping):
        return None
    return {**props, "metadata": {**metadata, "labels": {**labels, **existing}}}


def _with_docker_labels(props: Mapping[str, Any], labels: Mapping[str, str]) -> dict[str, Any]:
    existing = list(props.get("labels") or [])
    present = {item.get("label") for item in existing if isinstance(item, Mapping)}
    added = [{"label": k, "value": v} for k, v in labels.items() if k not in present]
    return {**props, "labels": existing + added}


def apply_labels(type_: str, props: Mapping[str, Any], labels: Mapping[str, str]) -> dict[str, Any] | None:
    """Props with the stack labels added, or None when the resource type carries no labels."""
    if type_.startswith("kubernetes:") and not type_.startswith("kubernetes:helm"):
        return _with_k8s_labels(props, labels)
    if type_ in _DOCKER_LABELLED:
        return _with_docker_labels(props, labels)
    return None


def label_transform(labels: Mapping[str, str]) -> pulumi.ResourceTransform:
    """A stack transform adding ``labels``; resource-specific labels win on conflict.

    It changes properties only and hands back no options, so the engine keeps the
    resource's own: the Python SDK's transform round trip (3.272) drops an explicit
    ``delete_before_replace=False`` (it copies the option only when true), and the edge
    containers' create-before-delete would silently become the provider's default
    delete-first (the engine tier's roll test lost 15 of 169 requests that way).
    """

    def transform(args: pulumi.ResourceTransformArgs) -> pulumi.ResourceTransformResult | None:
        props = apply_labels(args.type_, args.props, labels)
        # opts=None: "keep the options the resource registered with" (see the docstring)
        return None if props is None else pulumi.ResourceTransformResult(props=props, opts=None)  # type: ignore[arg-type]

    return transform
