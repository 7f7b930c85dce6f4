"""Envoy's configuration as plain data: settings + keys in, bootstrap, clusters and listener out.

Pure functions, no I/O: the supervisor writes what they return, the unit tests read it.

Why it is shaped this way:
- **One cluster per key id**, all pointing at the same payload: Envoy's per-cluster
  statistics (requests by code, latency histogram, request and response bytes) then *are*
  the per-key metrics, with the key id as ``envoy_cluster_name``; nothing is counted by hand.
- **Keys**: Envoy's ``api_key_auth`` filter answers 401 for a missing or unknown key and
  counts it; each known key has a route matching its ``Authorization`` header, which picks
  the key's cluster and the key's rate limit.  The key only ever sits in the listener file,
  on a tmpfs only the gateway's user reads; logs show the id.
- **Limits**: ``local_ratelimit`` per route, one token bucket per key, refilled evenly over
  the minute, so ``Retry-After`` (the refill interval, rounded up) is exact, not a guess.
- **Admin** listens on a unix socket only; ``/metrics`` and ``/ready`` are the two admin
  paths the metrics listener forwards, so neither ``/config_dump`` (it would show the keys)
  nor ``/quitquitquit`` is reachable from the network.
- **Streaming**: the router never buffers; ``timeout`` bounds a whole answer and
  ``stream_idle_timeout`` a stalled one.
"""

from __future__ import annotations

import ipaddress
import math
from dataclasses import dataclass
from typing import Any

from tizi_gateway.settings import GatewaySettings

KEY_ID_HEADER = "x-tizi-key-id"
OPEN_CLUSTER = "probes"
ADMIN_CLUSTER = "admin"
HCM = "type.googleapis.com/envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager"
ROUTER = "type.googleapis.com/envoy.extensions.filters.http.router.v3.Router"
API_KEY_AUTH = "type.googleapis.com/envoy.extensions.filters.http.api_key_auth.v3.ApiKeyAuth"
LOCAL_RATELIMIT = "type.googleapis.com/envoy.extensions.filters.http.local_ratelimit.v3.LocalRateLimit"
FILTER_CONFIG = "type.googleapis.com/envoy.config.route.v3.FilterConfig"
CLUSTER = "type.googleapis.com/envoy.config.cluster.v3.Cluster"
LISTENER = "type.googleapis.com/envoy.config.listener.v3.Listener"
STDOUT_LOG = "type.googleapis.com/envoy.extensions.access_loggers.stream.v3.StdoutAccessLog"
PREVIOUS_HOSTS = "type.googleapis.com/envoy.extensions.retry.host.previous_hosts.v3.PreviousHostsPredicate"
TLS_CONTEXT = "type.googleapis.com/envoy.extensions.transport_sockets.tls.v3.DownstreamTlsContext"


@dataclass(frozen=True)
class Paths:
    """Where the supervisor keeps Envoy's files (a tmpfs) and the site certificate (a volume)."""

    run_dir: str = "/run/tizi-gateway"
    cert_file: str = "/var/lib/tizi-gateway/tls/site.crt"
    key_file: str = "/var/lib/tizi-gateway/tls/site.key"

    @property
    def xds_dir(self) -> str:
        return f"{self.run_dir}/xds"

    @property
    def admin_socket(self) -> str:
        return f"{self.run_dir}/admin.sock"

    @property
    def cds_file(self) -> str:
        return f"{self.xds_dir}/cds.json"

    @property
    def lds_file(self) -> str:
        return f"{self.xds_dir}/lds.json"


def refill(requests_per_minute: int) -> tuple[int, int]:
    """(tokens per fill, fill interval in ms) spreading the minute's budget evenly.

    Envoy refuses intervals under 50 ms; above 1 200 a minute the bucket refills every
    second with a second's share instead.
    """
    if requests_per_minute >= 60:
        return math.ceil(requests_per_minute / 60), 1000
    return 1, math.ceil(60_000 / requests_per_minute)


def retry_after_seconds(requests_per_minute: int) -> int:
    """How long a limited client waits for its next token: one refill interval, rounded up."""
    return math.ceil(refill(requests_per_minute)[1] / 1000)


def _address(host: str, port: int) -> dict[str, Any]:
    return {"socket_address": {"address": host, "port_value": port}}


def _upstream_cluster(name: str, s: GatewaySettings) -> dict[str, Any]:
    try:
        ipaddress.ip_address(s.upstream_host)
        discovery = "STATIC"
    except ValueError:
        discovery = "STRICT_DNS"  # a container name on the site's network
    cluster: dict[str, Any] = {
        "@type": CLUSTER,
        "name": name,
        "type": discovery,
        "connect_timeout": "2s",
        "load_assignment": {
            "cluster_name": name,
            "endpoints": [
                {"lb_endpoints": [{"endpoint": {"address": _address(s.upstream_host, s.upstream_port)}}]}
            ],
        },
        # request and response body sizes per cluster, that is per key
        "track_cluster_stats": {"request_response_sizes": True},
        "circuit_breakers": {
            "thresholds": [{"max_connections": 1024, "max_pending_requests": 1024, "max_requests": 1024}]
        },
    }
    if discovery == "STRICT_DNS":
        cluster["dns_lookup_family"] = "V4_ONLY"
    return cluster


def clusters(s: GatewaySettings, key_ids: list[str]) -> list[dict[str, Any]]:
    """One cluster per key id, and one for the open probe paths."""
    return [_upstream_cluster(name, s) for name in [OPEN_CLUSTER, *sorted(key_ids)]]


def _retry_policy() -> dict[str, Any]:
    # Only failures before the request reached the payload are retried, on another host:
    # safe for any method, and what a replaced revision produces while it drains.
    return {
        "retry_on": "connect-failure,refused-stream,reset-before-request",
        "num_retries": 2,
        "retry_host_predicate": [
            {
                "name": "envoy.retry_host_predicates.previous_hosts",
                "typed_config": {"@type": PREVIOUS_HOSTS},
            }
        ],
        "host_selection_retry_max_attempts": "3",
    }


def _rate_limit(key: str, s: GatewaySettings) -> dict[str, Any]:
    tokens, interval_ms = refill(s.requests_per_minute)
    everyone = {"default_value": {"numerator": 100, "denominator": "HUNDRED"}, "runtime_key": "tizi_rl"}
    return {
        "@type": LOCAL_RATELIMIT,
        "stat_prefix": f"ratelimit_{key}",
        "token_bucket": {
            "max_tokens": max(s.burst, tokens),
            "tokens_per_fill": tokens,
            "fill_interval": f"{interval_ms / 1000:g}s",
        },
        "filter_enabled": everyone,
        "filter_enforced": everyone,
        "response_headers_to_add": [
            {
                "append_action": "OVERWRITE_IF_EXISTS_OR_ADD",
                "header": {"key": "retry-after", "value": str(retry_after_seconds(s.requests_per_minute))},
            }
        ],
    }


def routes(s: GatewaySettings, keys: dict[str, str]) -> list[dict[str, Any]]:
    """Open probe paths first, then one route per key (and its bare form), then a 401."""
    timeout = f"{s.request_timeout_s}s"
    no_auth = {"envoy.filters.http.api_key_auth": {"@type": FILTER_CONFIG, "disabled": True}}
    table: list[dict[str, Any]] = [
        {
            "name": f"open{path}",
            "match": {"path": path},
            "route": {"cluster": OPEN_CLUSTER, "timeout": "10s"},
            "typed_per_filter_config": no_auth,
        }
        for path in s.open_paths
    ]
    for kid, key in sorted(keys.items()):
        for form in (f"Bearer {key}", key):
            table.append(
                {
                    "name": kid,
                    "match": {
                        "prefix": "/",
                        "headers": [{"name": "authorization", "string_match": {"exact": form}}],
                    },
                    "route": {"cluster": kid, "timeout": timeout, "retry_policy": _retry_policy()},
                    "typed_per_filter_config": {"envoy.filters.http.local_ratelimit": _rate_limit(kid, s)},
                }
            )
    table.append(
        {
            "name": "unauthorized",
            "match": {"prefix": "/"},
            "direct_response": {
                "status": 401,
                "body": {"inline_string": "Send the key as Authorization: Bearer <key>."},
            },
        }
    )
    return table


def _error_body(message: str, kind: str, code: str) -> dict[str, Any]:
    return {
        "json_format": {"error": {"message": message, "type": kind, "code": code}},
        "content_type": "application/json",
    }


def _status_is(code: int) -> dict[str, Any]:
    return {
        "status_code_filter": {
            "comparison": {"op": "EQ", "value": {"default_value": code, "runtime_key": f"tizi_{code}"}}
        }
    }


def local_replies(s: GatewaySettings) -> dict[str, Any]:
    """Envoy's own answers (401, 429, 503) shaped like the OpenAI API's errors."""
    return {
        "mappers": [
            {
                "filter": _status_is(401),
                "body_format_override": _error_body(
                    "Incorrect or missing API key: send Authorization: Bearer <key>.",
                    "invalid_request_error",
                    "invalid_api_key",
                ),
            },
            {
                "filter": _status_is(429),
                "body_format_override": _error_body(
                    f"Rate limit reached for this key ({s.requests_per_minute} requests per minute); "
                    "retry after the Retry-After header's seconds.",
                    "requests",
                    "rate_limit_exceeded",
                ),
            },
        ],
        "body_format": _error_body("%LOCAL_REPLY_BODY%", "gateway_error", "%RESPONSE_CODE%"),
    }


ACCESS_LOG_FIELDS = {
    "time": "%START_TIME%",
    "key_id": f"%REQ({KEY_ID_HEADER})%",
    "method": "%REQ(:METHOD)%",
    "path": "%PATH(NQ)%",
    "code": "%RESPONSE_CODE%",
    "flags": "%RESPONSE_FLAGS%",
    "duration_ms": "%DURATION%",
    "upstream": "%UPSTREAM_HOST%",
    "bytes_in": "%BYTES_RECEIVED%",
    "bytes_out": "%BYTES_SENT%",
}


def _tls(paths: Paths) -> dict[str, Any]:
    return {
        "name": "envoy.transport_sockets.tls",
        "typed_config": {
            "@type": TLS_CONTEXT,
            "common_tls_context": {
                "tls_params": {"tls_minimum_protocol_version": "TLSv1_2"},
                "tls_certificates": [
                    {
                        "certificate_chain": {"filename": paths.cert_file},
                        "private_key": {"filename": paths.key_file},
                    }
                ],
                "alpn_protocols": ["h2", "http/1.1"],
            },
        },
    }


def listener(s: GatewaySettings, keys: dict[str, str], paths: Paths) -> dict[str, Any]:
    """The API listener: auth, per-key limits, routes to the key clusters."""
    manager = {
        "@type": HCM,
        "stat_prefix": "api",
        "codec_type": "AUTO",
        "use_remote_address": True,
        "normalize_path": True,
        "merge_slashes": True,
        "stream_idle_timeout": "300s",
        "common_http_protocol_options": {
            "idle_timeout": "60s",
            "headers_with_underscores_action": "REJECT_REQUEST",
        },
        "access_log": [
            {
                "name": "envoy.access_loggers.stdout",
                "typed_config": {"@type": STDOUT_LOG, "log_format": {"json_format": ACCESS_LOG_FIELDS}},
            }
        ],
        "local_reply_config": local_replies(s),
        "http_filters": [
            {
                "name": "envoy.filters.http.api_key_auth",
                "typed_config": {
                    "@type": API_KEY_AUTH,
                    "credentials": [{"key": key, "client": kid} for kid, key in sorted(keys.items())],
                    "key_sources": [{"header": "authorization"}],
                    "forwarding": {"header": KEY_ID_HEADER},
                },
            },
            {
                # enforced per route (one bucket per key); nothing at this level
                "name": "envoy.filters.http.local_ratelimit",
                "typed_config": {"@type": LOCAL_RATELIMIT, "stat_prefix": "ratelimit"},
            },
            {"name": "envoy.filters.http.router", "typed_config": {"@type": ROUTER}},
        ],
        "route_config": {
            "name": "api",
            "virtual_hosts": [{"name": "api", "domains": ["*"], "routes": routes(s, keys)}],
        },
    }
    chain: dict[str, Any] = {
        "filters": [{"name": "envoy.filters.network.http_connection_manager", "typed_config": manager}]
    }
    if s.tls == "site-ca":
        chain["transport_socket"] = _tls(paths)
    return {
        "@type": LISTENER,
        "name": "api",
        "address": _address("0.0.0.0", s.listen_port),
        "filter_chains": [chain],
        # a replaced listener finishes its requests for this long, then closes
        "drain_type": "DEFAULT",
    }


def _metrics_listener(s: GatewaySettings) -> dict[str, Any]:
    def admin_route(path: str, admin_path: str) -> dict[str, Any]:
        return {
            "match": {"path": path, "headers": [{"name": ":method", "string_match": {"exact": "GET"}}]},
            "route": {"cluster": ADMIN_CLUSTER, "prefix_rewrite": admin_path},
        }

    manager = {
        "@type": HCM,
        "stat_prefix": "metrics",
        "route_config": {
            "name": "metrics",
            "virtual_hosts": [
                {
                    "name": "metrics",
                    "domains": ["*"],
                    "routes": [
                        admin_route("/metrics", "/stats/prometheus"),
                        admin_route("/ready", "/ready"),
                        {"match": {"prefix": "/"}, "direct_response": {"status": 404}},
                    ],
                }
            ],
        },
        "http_filters": [{"name": "envoy.filters.http.router", "typed_config": {"@type": ROUTER}}],
    }
    return {
        "name": "metrics",
        "address": _address("0.0.0.0", s.metrics_port),
        "filter_chains": [
            {"filters": [{"name": "envoy.filters.network.http_connection_manager", "typed_config": manager}]}
        ],
    }


def _file_source(path: str, directory: str) -> dict[str, Any]:
    return {
        "resource_api_version": "V3",
        "path_config_source": {"path": path, "watched_directory": {"path": directory}},
    }


def bootstrap(s: GatewaySettings, paths: Paths) -> dict[str, Any]:
    """Envoy's start-up file: admin on a socket, the metrics listener, clusters and listener from files."""
    admin_address = {"pipe": {"path": paths.admin_socket, "mode": 0o600}}
    return {
        "node": {"id": "tizi-gateway", "cluster": "tizi"},
        "admin": {"address": admin_address},
        "dynamic_resources": {
            "cds_config": _file_source(paths.cds_file, paths.xds_dir),
            "lds_config": _file_source(paths.lds_file, paths.xds_dir),
        },
        "static_resources": {
            "listeners": [_metrics_listener(s)],
            "clusters": [
                {
                    "name": ADMIN_CLUSTER,
                    "type": "STATIC",
                    "connect_timeout": "1s",
                    "load_assignment": {
                        "cluster_name": ADMIN_CLUSTER,
                        "endpoints": [{"lb_endpoints": [{"endpoint": {"address": admin_address}}]}],
                    },
                }
            ],
        },
    }


def discovery_file(version: str, resources: list[dict[str, Any]]) -> dict[str, Any]:
    """A DiscoveryResponse as Envoy's file subscriptions read it."""
    return {"version_info": version, "resources": resources}
