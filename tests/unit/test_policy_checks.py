"""The policy pack's checks: residency and container security on resources a fork might declare."""

from __future__ import annotations

import pytest

from components.rules.catalogue import TargetKind
from policies.checks import placements, residency_violations, security_violations

LABELS = {"tizi.ma/region": "eu-paris", "tizi.ma/data-class": "sensitive"}


def docker_labels(labels):
    return [{"label": k, "value": v} for k, v in labels.items()]


def test_sensitive_namespace_in_eu_paris_is_stopped_with_the_rule():
    found = placements("ns", "kubernetes:core/v1:Namespace", {"metadata": {"labels": LABELS}})
    assert [(p.region, p.target, p.data_class) for p in found] == [
        ("eu-paris", TargetKind.KUBERNETES, "sensitive")
    ]
    [message] = residency_violations(found, None)
    assert "RES-SENSITIVE" in message and "Law 09-08" in message and message.startswith("ns: region eu-paris")


def test_allowed_placements_pass():
    found = placements(
        "ns",
        "kubernetes:core/v1:Namespace",
        {"metadata": {"labels": {**LABELS, "tizi.ma/region": "ma-benguerir"}}},
    )
    assert residency_violations(found, None) == []


def test_koyeb_service_is_judged_on_the_stack_data_class():
    koyeb = placements("svc", "koyeb:index/service:Service", {"definition": {"regions": ["par"]}})
    edge = placements(
        "c",
        "docker:index/container:Container",
        {"labels": docker_labels({"tizi.ma/region": "ma-edge-x1", "tizi.ma/data-class": "personal"})},
    )
    messages = residency_violations(koyeb + edge, None)
    assert len(messages) == 1 and "svc: region eu-paris" in messages[0] and "RES-PERSONAL" in messages[0]
    assert residency_violations(koyeb, "public") == []


def test_unlabelled_placement_without_configured_class_is_refused():
    koyeb = placements("svc", "koyeb:index/service:Service", {"definition": {"regions": ["fra"]}})
    assert "no data class" in residency_violations(koyeb, None)[0]


def test_conflicting_data_classes_are_refused():
    a = placements(
        "a",
        "kubernetes:core/v1:Namespace",
        {"metadata": {"labels": {**LABELS, "tizi.ma/region": "ma-benguerir"}}},
    )
    b = placements(
        "b",
        "kubernetes:core/v1:Namespace",
        {"metadata": {"labels": {"tizi.ma/region": "ma-benguerir", "tizi.ma/data-class": "public"}}},
    )
    assert "several data classes" in residency_violations(a + b, None)[0]


def test_helm_release_values_are_placements():
    values = {
        "placement": {"region": "eu-madrid"},
        "commonLabels": {"tizi.ma/data-class": "vital-l2"},
        "knative": {"enabled": True},
    }
    found = placements("rel", "kubernetes:helm.sh/v3:Release", {"values": values})
    assert found[0].target is TargetKind.KNATIVE
    assert "RES-VITAL-L2" in residency_violations(found, None)[0]


@pytest.mark.parametrize(
    ("props", "words"),
    [
        ({"user": "0:0"}, "non-root"),
        ({}, "non-root"),
        ({"user": "root"}, "non-root"),
        ({"user": "10001:10001", "privileged": True}, "privileged"),
    ],
    ids=["uid0", "no-user", "root-name", "privileged"],
)
def test_docker_root_or_privileged_containers_are_stopped(props, words):
    assert any(words in m for m in security_violations("c", "docker:index/container:Container", props))


def test_hardened_docker_container_passes():
    assert security_violations("c", "docker:index/container:Container", {"user": "10001:10001"}) == []


def deployment(container_context, pod_context=None):
    return {
        "spec": {
            "template": {
                "spec": {
                    "securityContext": pod_context or {},
                    "containers": [{"name": "app", "securityContext": container_context}],
                }
            }
        }
    }


@pytest.mark.parametrize(
    ("container", "pod", "words"),
    [
        ({"privileged": True, "runAsNonRoot": True, "allowPrivilegeEscalation": False}, None, "privileged"),
        ({"allowPrivilegeEscalation": False}, None, "non-root"),
        ({"allowPrivilegeEscalation": False, "runAsUser": 0}, {"runAsNonRoot": True}, "non-root"),
        ({"runAsNonRoot": True}, None, "allowPrivilegeEscalation"),
    ],
    ids=["privileged", "no-non-root", "uid0", "escalation"],
)
def test_raw_deployments_bypassing_the_chart_are_checked(container, pod, words):
    problems = security_violations("d", "kubernetes:apps/v1:Deployment", deployment(container, pod))
    assert any(words in m for m in problems)


def test_restricted_deployment_passes():
    props = deployment({"allowPrivilegeEscalation": False}, {"runAsNonRoot": True, "runAsUser": 10001})
    assert security_violations("d", "kubernetes:apps/v1:Deployment", props) == []


def test_helm_values_that_enable_root_are_stopped():
    values = {"containerSecurityContext": {"privileged": True}, "podSecurityContext": {"runAsUser": 0}}
    problems = security_violations("rel", "kubernetes:helm.sh/v3:Release", {"values": values})
    assert any("privileged" in m for m in problems) and any("non-root" in m for m in problems)
    assert security_violations("rel", "kubernetes:helm.sh/v3:Release", {"values": {}}) == []
