"""The gateway sidecar in the chart: its settings, its place in the pod, its alert rules."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml

from .render import (
    BASE,
    CHART,
    HelmError,
    _run_helm,
    container,
    one,
    render_chart,
    serving_container,
    with_base,
)

pytestmark = pytest.mark.unit


def _settings(docs: list[dict]) -> dict:
    (cm,) = [d for d in docs if d["kind"] == "ConfigMap" and d["metadata"]["name"].endswith("-gateway")]
    return json.loads(cm["data"]["gateway.json"])


def test_gateway_settings_follow_the_values_and_name_the_probe_paths():
    values = with_base(
        gateway={"requestsPerMinute": 90, "burst": 7}, probes={"readiness": {"path": "/v1/ready"}}
    )
    settings = _settings(render_chart(values))
    assert settings == {
        "upstream_host": "127.0.0.1",
        "upstream_port": 8080,
        "listen_port": 8443,
        "metrics_port": 9095,
        "requests_per_minute": 90,
        "burst": 7,
        "tls": "off",
        "open_paths": ["/healthz", "/v1/ready"],
        "request_timeout_s": 600,
    }


def test_gateway_reads_the_same_secret_as_files_and_runs_restricted():
    deployment = one(render_chart(BASE), "Deployment")
    gateway = serving_container(deployment)
    assert gateway["name"] == "gateway" and gateway["image"] == "tizi/gateway:0.1.0"
    mounts = {m["name"]: m for m in gateway["volumeMounts"]}
    assert mounts["api-keys"]["readOnly"] is True
    assert "--keys" in gateway["args"] and mounts["api-keys"]["mountPath"] in gateway["args"]
    assert "env" not in gateway and "envFrom" not in gateway, "keys never reach the gateway as env"
    assert gateway["securityContext"] == container(deployment)["securityContext"]
    assert gateway["readinessProbe"]["httpGet"] == {"path": "/ready", "port": "metrics"}
    # readiness is probed as soon as startup passes: the startup period is the pod's readiness step
    assert gateway["startupProbe"]["httpGet"] == gateway["readinessProbe"]["httpGet"]
    assert gateway["startupProbe"]["periodSeconds"] < gateway["readinessProbe"]["periodSeconds"]
    assert gateway["lifecycle"]["preStop"]["sleep"]["seconds"] == 5
    annotations = deployment["spec"]["template"]["metadata"]["annotations"]
    assert annotations["prometheus.io/port"] == "9095" and annotations["prometheus.io/path"] == "/metrics"


def test_disabled_gateway_leaves_the_payload_alone():
    docs = render_chart(with_base(gateway={"enabled": False}))
    pod = one(docs, "Deployment")["spec"]["template"]["spec"]
    assert [c["name"] for c in pod["containers"]] == ["inference"]
    assert not [d for d in docs if d["metadata"]["name"].endswith("-gateway")]


def test_ports_that_collide_fail_with_one_line():
    with pytest.raises(HelmError) as failed:
        render_chart(with_base(gateway={"port": 8080}))
    assert "gateway.port (8080), gateway.metricsPort (9095) and containerPort (8080) must all differ" in str(
        failed.value
    )


def test_alert_rules_ship_as_a_config_map_and_as_a_prometheus_rule_where_the_crd_exists():
    rules_file = (CHART / "files" / "gateway-alerts.yml").read_text()
    docs = render_chart(BASE)
    (alerts,) = [d for d in docs if d["metadata"]["name"].endswith("-gateway-alerts")]
    assert yaml.safe_load(alerts["data"]["tizi-gateway.rules.yml"]) == yaml.safe_load(rules_file)
    assert not [d for d in docs if d["kind"] == "PrometheusRule"], "no CRD, no PrometheusRule"
    out = _run_helm(
        ["template", "t", str(CHART), "--api-versions", "monitoring.coreos.com/v1/PrometheusRule"], BASE
    )
    (rule,) = [d for d in yaml.safe_load_all(out) if d and d["kind"] == "PrometheusRule"]
    assert rule["spec"] == yaml.safe_load(rules_file)


def test_the_gateway_image_carries_the_same_rules_for_edge_sites():
    build = (Path(CHART).parents[1] / "scripts" / "build-gateway-image.sh").read_text()
    assert "gateway-alerts.yml" in build, "the image build copies the chart's rules file"


def test_knative_reserved_ports_are_refused_in_knative_mode():
    with pytest.raises(HelmError) as failed:
        render_chart(with_base(knative={"enabled": True}, gateway={"metricsPort": 9090}))
    assert "gateway.metricsPort (9090) is reserved by Knative's queue-proxy" in str(failed.value)
    # the defaults leave Knative's ports alone
    assert render_chart(with_base(knative={"enabled": True}))
