"""The gateway's alert rules, evaluated by Prometheus's own promtool against generated series:
each alert fires where it should, for the right instance or key, and stays quiet elsewhere."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path
from typing import Any

import yaml

from tests.conftest import require

RULES = Path(__file__).resolve().parents[3] / "charts" / "inference-service" / "files" / "gateway-alerts.yml"
PROMTOOL_VERSION = "v0.316.0"


def promtool() -> str | None:
    cache = Path(os.environ.get("TIZI_CACHE", Path.home() / ".cache" / "tizi"))
    for candidate in (
        os.environ.get("TIZI_PROMTOOL"),
        str(cache / "promtool" / PROMTOOL_VERSION / "promtool"),
    ):
        if candidate and os.access(candidate, os.X_OK):
            return candidate
    return None


def series(name: str, labels: dict[str, str], values: str) -> dict[str, str]:
    inner = ",".join(f'{k}="{v}"' for k, v in labels.items())
    return {"series": f"{name}{{{inner}}}", "values": values}


UNAUTHORIZED = "envoy_http_api_key_auth_unauthorized"
KEY_REQUESTS = "envoy_cluster_upstream_rq_total"
LIMITED = "envoy_http_local_rate_limit_rate_limited"
BY_CLASS = "envoy_http_downstream_rq_xx"
ALL = "envoy_http_downstream_rq_total"
API = {"envoy_http_conn_manager_prefix": "api"}


DESCRIPTIONS = {
    rule["alert"]: rule["annotations"]["description"]
    for rule in yaml.safe_load(RULES.read_text())["groups"][0]["rules"]
}


def fired(alert: str, at: str, labels: dict[str, str] | None = None, summary: str = "") -> dict[str, Any]:
    """An alert_rule_test: no alert, or exactly this one (labels, and the summary as rendered)."""
    expected = []
    if labels is not None:
        annotations = {"summary": summary, "description": DESCRIPTIONS[alert]}
        expected.append({"exp_labels": labels, "exp_annotations": annotations})
    return {"eval_time": at, "alertname": alert, "exp_alerts": expected}


def rule_tests() -> list[dict[str, Any]]:
    day = 24 * 60  # one-minute samples
    return [
        {  # 60 refused requests a minute on site-a for 20 minutes; 10 a minute on site-b
            "interval": "1m",
            "input_series": [
                series(UNAUTHORIZED, {**API, "instance": "site-a"}, "0+60x20"),
                series(UNAUTHORIZED, {**API, "instance": "site-b"}, "0+10x20"),
            ],
            "alert_rule_test": [
                fired("TiziGatewayUnauthorizedBurst", "3m"),  # not yet: it must last 2 minutes
                fired(
                    "TiziGatewayUnauthorizedBurst",
                    "15m",
                    {"severity": "warning", "instance": "site-a"},
                    "60 requests/min with a missing or unknown key on site-a",
                ),
            ],
        },
        {  # a day at 1 request/s, then one key jumps to 20/s; a steady key and a tiny one do not alert
            "interval": "1m",
            "input_series": [
                series(
                    KEY_REQUESTS,
                    {"envoy_cluster_name": "key-jumps", "instance": "s"},
                    f"0+60x{day} {60 * day + 1200}+1200x40",
                ),
                series(
                    KEY_REQUESTS, {"envoy_cluster_name": "key-steady", "instance": "s"}, f"0+60x{day + 40}"
                ),
                series(
                    KEY_REQUESTS,
                    {"envoy_cluster_name": "key-tiny", "instance": "s"},
                    f"0+1x{day} {day + 5}+5x40",
                ),
            ],
            "alert_rule_test": [
                fired("TiziGatewayKeyAboveUsualRate", f"{day - 10}m"),
                fired(
                    "TiziGatewayKeyAboveUsualRate",
                    f"{day + 30}m",
                    {"severity": "warning", "instance": "s", "envoy_cluster_name": "key-jumps"},
                    "key key-jumps at 20 requests/s, over 5x its usual rate, on s",
                ),
            ],
        },
        {  # one key limited all along, another never
            "interval": "1m",
            "input_series": [
                series(
                    LIMITED,
                    {"envoy_local_http_ratelimit_prefix": "ratelimit_key-busy", "instance": "s"},
                    "0+5x30",
                ),
                series(
                    LIMITED,
                    {"envoy_local_http_ratelimit_prefix": "ratelimit_key-calm", "instance": "s"},
                    "0x30",
                ),
            ],
            "alert_rule_test": [
                fired("TiziGatewayKeyRateLimited", "10m"),
                fired(
                    "TiziGatewayKeyRateLimited",
                    "25m",
                    {
                        "severity": "info",
                        "instance": "s",
                        "envoy_local_http_ratelimit_prefix": "ratelimit_key-busy",
                    },
                    "ratelimit_key-busy rate-limited for 15 minutes on s",
                ),
            ],
        },
        {  # 10% server errors on site-a, 1% on site-b
            "interval": "1m",
            "input_series": [
                series(BY_CLASS, {**API, "envoy_response_code_class": "5", "instance": "site-a"}, "0+10x20"),
                series(ALL, {**API, "instance": "site-a"}, "0+100x20"),
                series(BY_CLASS, {**API, "envoy_response_code_class": "5", "instance": "site-b"}, "0+1x20"),
                series(ALL, {**API, "instance": "site-b"}, "0+100x20"),
            ],
            "alert_rule_test": [
                fired("TiziGatewayHigh5xxRatio", "4m"),
                fired(
                    "TiziGatewayHigh5xxRatio",
                    "12m",
                    {"severity": "critical", "instance": "site-a"},
                    "10% of requests fail with 5xx on site-a",
                ),
            ],
        },
    ]


def run_promtool(
    binary: str, tmp_path: Path, tests: list[dict[str, Any]]
) -> subprocess.CompletedProcess[str]:
    test_file = tmp_path / "gateway-alerts.test.yml"
    test_file.write_text(
        yaml.safe_dump({"rule_files": [str(RULES)], "evaluation_interval": "1m", "tests": tests})
    )
    # --ignore-unknown-fields: off; promtool compares labels, and annotations only when given
    return subprocess.run(
        [binary, "test", "rules", str(test_file)], capture_output=True, text=True, timeout=120
    )


def test_rules_are_valid_prometheus_rules():
    binary = promtool()
    require(binary is not None, "no promtool: run scripts/build-promtool.sh")
    result = subprocess.run(
        [binary, "check", "rules", str(RULES)], capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "4 rules found" in result.stdout


def test_each_alert_fires_on_its_pattern_and_stays_quiet_elsewhere(tmp_path):
    binary = promtool()
    require(binary is not None, "no promtool: run scripts/build-promtool.sh")
    result = run_promtool(binary, tmp_path, rule_tests())
    assert result.returncode == 0, result.stdout + result.stderr
    assert "SUCCESS" in result.stdout


def test_the_evaluation_would_notice_a_rule_that_never_fires(tmp_path):
    """The harness itself: expecting an alert on quiet series must fail."""
    binary = promtool()
    require(binary is not None, "no promtool: run scripts/build-promtool.sh")
    quiet = [{
        "interval": "1m",
        "input_series": [series(UNAUTHORIZED, {**API, "instance": "site-b"}, "0+10x20")],
        "alert_rule_test": [
            fired("TiziGatewayUnauthorizedBurst", "15m", {"severity": "warning", "instance": "site-b"}, "any")
        ],
    }]  # fmt: skip
    result = run_promtool(binary, tmp_path, quiet)
    assert result.returncode != 0 and "TiziGatewayUnauthorizedBurst" in result.stdout + result.stderr
