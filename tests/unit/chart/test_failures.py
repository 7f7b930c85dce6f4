"""Values the chart must refuse: the schema rejects malformed values, the
templates reject inconsistent ones, each with a message that names the problem."""

from __future__ import annotations

import re

import pytest

from .render import HelmError, render_chart, with_base

pytestmark = pytest.mark.unit


def test_empty_api_key_secret_fails_with_a_clear_message() -> None:
    with pytest.raises(HelmError, match=r"apiKeys\.existingSecret is required"):
        render_chart({})


@pytest.mark.parametrize(
    ("values", "message"),
    [
        (with_base(autoscaling={"minReplicas": -1}), r"minReplicas"),
        (with_base(replicaCount=-1), r"replicaCount"),
        (with_base(image={"pullPolicy": "Sometimes"}), r"pullPolicy"),
        (with_base(knative={"minScale": -1}), r"minScale"),
        (with_base(gpu={"count": "one"}), r"gpu"),
        (with_base(topologySpread={"whenUnsatisfiable": "Maybe"}), r"whenUnsatisfiable"),
        (with_base(unknownKey=True), r"unknownKey"),
        # helm 3.22 reports propertyNames errors at a wrong path; the offending name is reliable
        (with_base(env={"BAD-NAME": "x"}), r"BAD-NAME"),
    ],
    ids=[
        "negative-minReplicas",
        "negative-replicaCount",
        "pullPolicy-enum",
        "negative-minScale",
        "gpu-count-type",
        "whenUnsatisfiable-enum",
        "unknown-top-level-key",
        "env-name",
    ],
)
def test_schema_violation_fails(values: dict, message: str) -> None:
    with pytest.raises(HelmError, match=message):
        render_chart(values)


@pytest.mark.parametrize(
    ("values", "message"),
    [
        (with_base(autoscaling={"minReplicas": 4, "maxReplicas": 2}), "must not exceed"),
        (
            with_base(knative={"enabled": True}, ingress={"enabled": True, "hosts": ["a.ma"]}),
            "cannot be combined",
        ),
        (with_base(ingress={"enabled": True}), "at least one entry in ingress.hosts"),
        (with_base(pdb={"minAvailable": "", "maxUnavailable": ""}), "pdb.minAvailable or"),
    ],
    ids=["min-above-max", "ingress-with-knative", "ingress-without-hosts", "pdb-without-budget"],
)
def test_inconsistent_values_fail(values: dict, message: str) -> None:
    with pytest.raises(HelmError, match=re.escape(message)):
        render_chart(values)
