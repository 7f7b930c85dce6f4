"""The edge gateway deployed by the real engine: keys, per-key limits, metrics per key id,
TLS with the site's own CA, and a gateway restart, on this machine's Docker engine.

The stack is the local one with small limits (60 a minute, bursts of 5) and TLS on, so every
path is reached in a few seconds.
"""

from __future__ import annotations

import hashlib
import http.client
import json
import re
import ssl
import subprocess
import time
from pathlib import Path

import pytest
import yaml

from tests.engine_support import wait_for

from .conftest import Project, containers, docker, local_copy

PORT = 28310
METRICS = PORT + 1
LABEL = "tizi.ma/ministry=enginegw"
GATEWAY = "tizi-enginegw-dev-edge-local-gateway"
RULES = Path(__file__).resolve().parents[2] / "charts" / "inference-service" / "files" / "gateway-alerts.yml"


@pytest.fixture(scope="module")
def site(engine_tools, tmp_path_factory) -> tuple[Project, ssl.SSLContext]:
    root = tmp_path_factory.mktemp("engine-gateway")
    project = local_copy(
        root,
        "unix:///var/run/docker.sock",
        PORT,
        "enginegw",
        {"requestsPerMinute": 60, "burst": 5, "tls": "site-ca"},
    )
    stack = project.stack("local")
    result = stack.up()
    assert result.outputs["endpoints"].value == {"edge-local": f"https://127.0.0.1:{PORT}"}
    ca = root / "ca.crt"
    docker("cp", f"{GATEWAY}:/var/lib/tizi-gateway/tls/ca.crt", str(ca))
    context = ssl.create_default_context(cafile=str(ca))
    yield project, context
    stack.destroy()
    stack.workspace.remove_stack("local")


def call(context: ssl.SSLContext, path: str, key: str | None = None) -> tuple[int, dict[str, str], bytes]:
    conn = http.client.HTTPSConnection("127.0.0.1", PORT, context=context, timeout=10)
    try:
        conn.request("GET", path, headers={"Authorization": f"Bearer {key}"} if key else {})
        response = conn.getresponse()
        return response.status, {k.lower(): v for k, v in response.getheaders()}, response.read()
    finally:
        conn.close()


def metrics() -> str:
    conn = http.client.HTTPConnection("127.0.0.1", METRICS, timeout=5)
    try:
        conn.request("GET", "/metrics")
        return conn.getresponse().read().decode()
    finally:
        conn.close()


def key_id(key: str) -> str:
    return "key-" + hashlib.sha256(key.encode()).hexdigest()[:10]


def test_missing_and_unknown_keys_get_an_openai_shaped_401(site):
    _, context = site
    for key in (None, "sk-not-a-key-0000000000"):
        status, headers, body = call(context, "/v1/models", key)
        assert status == 401 and headers["content-type"] == "application/json"
        assert json.loads(body)["error"]["code"] == "invalid_api_key"
    assert call(context, "/readyz")[0] == 200, "the probe paths need no key"


def test_each_key_has_its_own_limit_and_429_says_when_to_retry(site):
    project, context = site
    first, second = project.api_keys("local")[:2]
    statuses = [call(context, "/v1/models", first)[0] for _ in range(12)]
    assert statuses[:5] == [200] * 5, statuses
    assert 429 in statuses[5:], statuses
    status, headers, body = call(context, "/v1/models", first)
    assert status == 429 and headers["retry-after"] == "1"
    assert json.loads(body)["error"]["code"] == "rate_limit_exceeded"
    assert call(context, "/v1/models", second)[0] == 200, "another key is not limited"
    time.sleep(1.2)
    assert call(context, "/v1/models", first)[0] == 200, "a token is back after Retry-After"


def test_metrics_count_per_key_id_and_never_show_a_key(site):
    project, context = site
    key = project.api_keys("local")[1]
    for _ in range(3):
        call(context, "/v1/models", key)
    text = metrics()
    kid = key_id(key)
    total = re.search(rf'^envoy_cluster_upstream_rq_total{{envoy_cluster_name="{kid}"}} (\d+)', text, re.M)
    assert total and int(total.group(1)) >= 3
    # histograms (latency, bytes) reach /metrics at Envoy's stats flush, every 5 s
    sizes = rf'envoy_cluster_upstream_rs_body_size_count{{envoy_cluster_name="{kid}"}} [1-9]'
    assert wait_for(lambda: re.search(sizes, metrics()) is not None, timeout=12)
    assert re.search(
        rf'envoy_cluster_upstream_rq_time_bucket{{envoy_cluster_name="{kid}",le="[^"]+"}} [1-9]', metrics()
    )
    assert not any(k in text for k in project.api_keys("local"))


def test_every_series_the_alert_rules_use_is_one_the_gateway_exports(site):
    project, context = site
    call(context, "/v1/models", "sk-wrong-key-00000000")
    for _ in range(8):
        call(context, "/v1/models", project.api_keys("local")[0])
    exported = {
        line.split("{")[0].split(" ")[0] for line in metrics().splitlines() if line and line[0] != "#"
    }
    rules = yaml.safe_load(RULES.read_text())["groups"][0]["rules"]
    used = {name for rule in rules for name in re.findall(r"\b(envoy_[a-z_]+)\{", rule["expr"])}
    assert used and used <= exported, used - exported


def test_plain_http_is_refused_on_the_tls_port_and_the_ca_key_stays_on_the_site(site):
    conn = http.client.HTTPConnection("127.0.0.1", PORT, timeout=5)
    with pytest.raises((http.client.HTTPException, ConnectionError, OSError)):
        conn.request("GET", "/readyz")
        conn.getresponse().read()
    listing = docker("exec", GATEWAY, "ls", "-l", "/var/lib/tizi-gateway/tls").stdout
    assert re.search(r"^-rw------- .* ca\.key$", listing, re.M) and re.search(
        r"^-rw------- .* site\.key$", listing, re.M
    )


def test_no_key_in_inspect_or_logs_of_the_gateway_and_its_publisher(site):
    project, _ = site
    stack_containers = containers(LABEL, component=None)
    assert {c["Config"]["Labels"]["org.tizi.component"] for c in stack_containers} >= {
        "gateway",
        "gateway-publisher",
    }
    for container in stack_containers:
        dump = json.dumps(container)
        assert not any(k in dump for k in project.api_keys("local")), container["Name"]
    logs = docker("logs", GATEWAY).stdout + docker("logs", GATEWAY).stderr
    assert "applied" in logs and not any(k in logs for k in project.api_keys("local"))


def test_a_gateway_restart_serves_again_within_5_seconds(site):
    project, context = site
    key = project.api_keys("local")[1]
    # the process dies (an OOM kill, a crash): Docker's restart policy brings it back; a
    # `docker kill` would count as stopped by hand, which Docker does not restart
    pid = docker("inspect", "-f", "{{.State.Pid}}", GATEWAY).stdout.strip()
    subprocess.run(["kill", "-9", pid], check=True)
    killed = time.monotonic()

    def serving() -> bool:
        """Two requests in a row answered through the service path (a key, the payload
        behind): readiness alone once answered while the next handshake was still reset."""
        try:
            return all(call(context, "/v1/models", key)[0] in (200, 429) for _ in range(2))
        except OSError:
            return False

    assert wait_for(serving, timeout=15, interval=0.1)
    recovered = time.monotonic() - killed
    assert recovered < 5, f"serving again after {recovered:.1f} s"
    assert call(context, "/readyz")[0] == 200
