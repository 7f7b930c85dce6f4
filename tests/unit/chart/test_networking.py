"""How traffic reaches the pods: the Service, the NetworkPolicy and the Ingress."""

from __future__ import annotations

import pytest

from .render import BASE, RELEASE, ci_values, container, find, one, render_chart, serving_container, with_base

pytestmark = pytest.mark.unit


def test_service_targets_the_named_http_port() -> None:
    docs = render_chart(BASE)
    svc = one(docs, "Service")
    assert svc["spec"]["type"] == "ClusterIP"
    assert svc["spec"]["ports"] == [{"name": "http", "port": 80, "targetPort": "http", "protocol": "TCP"}]
    deployment_doc = one(docs, "Deployment")
    # the named port http is the gateway's; the payload's own port is not the Service's target
    assert serving_container(deployment_doc)["ports"] == [
        {"name": "http", "containerPort": 8443, "protocol": "TCP"},
        {"name": "metrics", "containerPort": 9095, "protocol": "TCP"},
    ]
    assert container(deployment_doc)["ports"] == [
        {"name": "payload", "containerPort": 8080, "protocol": "TCP"}
    ]
    without = one(render_chart(with_base(gateway={"enabled": False})), "Deployment")
    assert container(without)["ports"] == [{"name": "http", "containerPort": 8080, "protocol": "TCP"}]


def test_network_policy_denies_by_default_and_allows_the_namespace() -> None:
    docs = render_chart(with_base(networkPolicy={"ingressNamespace": "ingress-nginx"}))
    policy = one(docs, "NetworkPolicy")["spec"]
    assert policy["policyTypes"] == ["Ingress"]
    assert len(policy["ingress"]) == 1
    rule = policy["ingress"][0]
    assert rule["from"] == [
        {"podSelector": {}},
        {"namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": "ingress-nginx"}}},
    ]
    assert rule["ports"] == [{"port": "http", "protocol": "TCP"}, {"port": "metrics", "protocol": "TCP"}]


def test_network_policy_without_ingress_namespace_allows_only_the_namespace() -> None:
    rule = one(render_chart(BASE), "NetworkPolicy")["spec"]["ingress"][0]
    assert rule["from"] == [{"podSelector": {}}]


def test_network_policy_can_be_disabled() -> None:
    assert not find(render_chart(with_base(networkPolicy={"enabled": False})), "NetworkPolicy")


# ------------------------------------------------------------------ ingress


def test_ingress_from_the_ci_profile() -> None:
    docs = render_chart(ci_values("ingress"))
    ingress = one(docs, "Ingress")["spec"]
    assert ingress["ingressClassName"] == "nginx"
    assert [r["host"] for r in ingress["rules"]] == [
        "inference.example.gov.ma",
        "api.example.gov.ma",
    ]
    assert ingress["rules"][0]["http"]["paths"][0]["path"] == "/v1"
    assert ingress["rules"][1]["http"]["paths"][0] == {
        "path": "/",
        "pathType": "Prefix",
        "backend": {"service": {"name": f"{RELEASE}-inference-service", "port": {"name": "http"}}},
    }
    assert ingress["tls"][0]["secretName"] == "inference-example-tls"


def test_no_ingress_by_default() -> None:
    assert not find(render_chart(BASE), "Ingress")
