"""The Envoy configuration the gateway writes: what it routes, limits, shows and hides.

The last test hands the rendered listener and clusters to the real Envoy 1.40 binary in
``--mode validate``: every field name and value here is one Envoy accepts.
"""

from __future__ import annotations

import json
import subprocess

import pytest
from tizi_gateway import envoy
from tizi_gateway.settings import parse_settings

from tests.conftest import require
from tests.gateway_support import (
    GATEWAY_SRC,  # noqa: F401  (puts the package on sys.path)
    envoy_binary,
)

KEYS = {"key-aaaaaaaaaa": "sk-one-1111111111", "key-bbbbbbbbbb": "sk-two-2222222222"}
SETTINGS = parse_settings(
    {"upstream_host": "payload-rev1", "upstream_port": 8080, "requests_per_minute": 90, "burst": 7}
)
PATHS = envoy.Paths()


@pytest.mark.parametrize(
    ("rpm", "tokens", "interval_ms", "retry_after"),
    [
        (1, 1, 60_000, 60),
        (7, 1, 8572, 9),
        (59, 1, 1017, 2),
        (60, 1, 1000, 1),
        (90, 2, 1000, 1),
        (6000, 100, 1000, 1),
    ],
)
def test_the_bucket_refills_evenly_and_retry_after_is_one_refill(rpm, tokens, interval_ms, retry_after):
    assert envoy.refill(rpm) == (tokens, interval_ms)
    assert envoy.retry_after_seconds(rpm) == retry_after
    assert interval_ms >= 50, "Envoy refuses shorter fill intervals"


def test_probe_paths_come_first_and_skip_the_key_check():
    table = envoy.routes(SETTINGS, KEYS)
    open_routes = table[: len(SETTINGS.open_paths)]
    assert [r["match"]["path"] for r in open_routes] == list(SETTINGS.open_paths)
    for route in open_routes:
        assert route["route"]["cluster"] == envoy.OPEN_CLUSTER
        assert route["typed_per_filter_config"]["envoy.filters.http.api_key_auth"]["disabled"] is True


def test_each_key_routes_to_its_own_cluster_with_its_own_bucket_and_anything_else_is_401():
    table = envoy.routes(SETTINGS, KEYS)
    keyed = [r for r in table if r["name"] in KEYS]
    assert len(keyed) == 2 * len(KEYS), "the Bearer form and the bare key"
    for route in keyed:
        (header,) = route["match"]["headers"]
        assert header["string_match"]["exact"] in {KEYS[route["name"]], f"Bearer {KEYS[route['name']]}"}
        assert route["route"]["cluster"] == route["name"]
        bucket = route["typed_per_filter_config"]["envoy.filters.http.local_ratelimit"]
        assert bucket["stat_prefix"] == f"ratelimit_{route['name']}"
        assert bucket["token_bucket"] == {"max_tokens": 7, "tokens_per_fill": 2, "fill_interval": "1s"}
        retry_after = bucket["response_headers_to_add"][0]["header"]
        assert retry_after == {"key": "retry-after", "value": "1"}
        # only failures before the payload saw the request are retried
        assert (
            route["route"]["retry_policy"]["retry_on"]
            == "connect-failure,refused-stream,reset-before-request"
        )
    assert table[-1]["direct_response"]["status"] == 401 and "headers" not in table[-1]["match"]
    assert {c["name"] for c in envoy.clusters(SETTINGS, list(KEYS))} == {envoy.OPEN_CLUSTER, *KEYS}


def test_no_key_means_everything_but_the_probes_is_refused():
    table = envoy.routes(SETTINGS, {})
    assert [r["name"] for r in table if "route" in r] == [f"open{p}" for p in SETTINGS.open_paths]
    filters = envoy.listener(SETTINGS, {}, PATHS)["filter_chains"][0]["filters"][0]["typed_config"][
        "http_filters"
    ]
    assert filters[0]["typed_config"]["credentials"] == []


def test_keys_appear_only_in_the_listener_never_in_logs_clusters_or_bootstrap():
    listener = json.dumps(envoy.listener(SETTINGS, KEYS, PATHS))
    assert all(key in listener for key in KEYS.values())
    elsewhere = json.dumps(
        [envoy.clusters(SETTINGS, list(KEYS)), envoy.bootstrap(SETTINGS, PATHS), envoy.ACCESS_LOG_FIELDS]
    )
    assert not any(key in elsewhere for key in KEYS.values())
    assert "authorization" not in json.dumps(envoy.ACCESS_LOG_FIELDS).lower()
    assert envoy.ACCESS_LOG_FIELDS["path"] == "%PATH(NQ)%", "query strings are not logged"


def test_admin_is_a_unix_socket_and_the_network_sees_only_metrics_and_ready():
    boot = envoy.bootstrap(SETTINGS, PATHS)
    assert boot["admin"]["address"] == {"pipe": {"path": PATHS.admin_socket, "mode": 0o600}}
    (metrics,) = boot["static_resources"]["listeners"]
    routes = metrics["filter_chains"][0]["filters"][0]["typed_config"]["route_config"]["virtual_hosts"][0][
        "routes"
    ]
    forwarded = {r["match"]["path"]: r["route"]["prefix_rewrite"] for r in routes if "route" in r}
    assert forwarded == {"/metrics": "/stats/prometheus", "/ready": "/ready"}
    assert routes[-1]["direct_response"]["status"] == 404


def test_tls_only_with_the_site_certificate():
    plain = envoy.listener(SETTINGS, KEYS, PATHS)["filter_chains"][0]
    assert "transport_socket" not in plain
    tls = parse_settings({"upstream_host": "p", "upstream_port": 1, "tls": "site-ca", "tls_names": ["site"]})
    chain = envoy.listener(tls, KEYS, PATHS)["filter_chains"][0]
    context = chain["transport_socket"]["typed_config"]["common_tls_context"]
    assert context["tls_params"]["tls_minimum_protocol_version"] == "TLSv1_2"
    assert context["tls_certificates"][0]["private_key"] == {"filename": PATHS.key_file}


def test_local_replies_are_openai_shaped():
    replies = envoy.local_replies(SETTINGS)
    by_code = {
        m["filter"]["status_code_filter"]["comparison"]["value"]["default_value"]: m["body_format_override"][
            "json_format"
        ]
        for m in replies["mappers"]
    }
    assert by_code[401]["error"]["code"] == "invalid_api_key"
    assert (
        by_code[429]["error"]["code"] == "rate_limit_exceeded"
        and "90 requests per minute" in by_code[429]["error"]["message"]
    )


def test_real_envoy_accepts_the_configuration(tmp_path):
    binary = envoy_binary()
    require(binary is not None, "no envoy binary: run scripts/build-gateway-image.sh --envoy")
    boot = envoy.bootstrap(SETTINGS, envoy.Paths(run_dir=str(tmp_path)))
    # validate mode checks static resources: put the dynamic ones in statically
    boot.pop("dynamic_resources")
    boot["static_resources"]["listeners"].append(
        {k: v for k, v in envoy.listener(SETTINGS, KEYS, envoy.Paths()).items() if k != "@type"}
    )
    boot["static_resources"]["clusters"] += [
        {k: v for k, v in c.items() if k != "@type"} for c in envoy.clusters(SETTINGS, list(KEYS))
    ]
    config = tmp_path / "static.json"
    config.write_text(json.dumps(boot))
    result = subprocess.run(
        [str(binary), "--mode", "validate", "-c", str(config), "--log-level", "error"],
        capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert result.returncode == 0, result.stdout + result.stderr
    assert "OK" in result.stdout
