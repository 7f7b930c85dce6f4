"""The gateway's settings file (``gateway.json``), written by tizi from the stack's spec.

The program validates every value at preview; this reader checks them again because the
file is the gateway's only input from outside the image, and refuses the whole file with
one line naming the field rather than starting Envoy on half a configuration.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

TLS_MODES = ("off", "site-ca")


class SettingsError(ValueError):
    """A settings file the gateway refuses; the message names the field."""


@dataclass(frozen=True)
class GatewaySettings:
    """What Envoy is told, apart from the keys."""

    upstream_host: str
    upstream_port: int
    listen_port: int = 8443
    metrics_port: int = 9095
    requests_per_minute: int = 600
    burst: int = 60
    tls: str = "off"
    #: names and addresses the site certificate is valid for (TLS ``site-ca`` only)
    tls_names: tuple[str, ...] = ()
    #: paths that answer without a key (the payload's probes)
    open_paths: tuple[str, ...] = ("/healthz", "/readyz", "/livez")
    #: a request (or a stream) may run this long; model answers can be slow
    request_timeout_s: int = 600
    #: which published configuration this is (the edge's publisher names it); "" elsewhere
    revision: str = ""
    extra: dict[str, Any] = field(default_factory=dict)


def _integer(raw: dict[str, Any], name: str, low: int, high: int, default: int) -> int:
    value = raw.get(name, default)
    if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
        raise SettingsError(f"{name}: {value!r} is not an integer from {low} to {high}")
    return value


def _text(raw: dict[str, Any], name: str, default: str | None = None) -> str:
    value = raw.get(name, default)
    if not isinstance(value, str) or not value or any(c.isspace() for c in value):
        raise SettingsError(f"{name}: {value!r} must be a non-empty string without spaces")
    return value


def parse_settings(raw: Any) -> GatewaySettings:
    """Settings from the decoded JSON object; SettingsError names the first bad field."""
    if not isinstance(raw, dict):
        raise SettingsError("gateway.json must hold a JSON object")
    known = {f for f in GatewaySettings.__dataclass_fields__ if f != "extra"}
    unknown = sorted(set(raw) - known)
    if unknown:
        raise SettingsError(f"unknown field(s) {', '.join(unknown)}; known: {', '.join(sorted(known))}")
    tls = raw.get("tls", "off")
    if tls not in TLS_MODES:
        raise SettingsError(f"tls: {tls!r} is not one of {', '.join(TLS_MODES)}")
    names = raw.get("tls_names", [])
    if not isinstance(names, list) or not all(isinstance(n, str) and n for n in names):
        raise SettingsError("tls_names: must be a list of host names or addresses")
    if tls == "site-ca" and not names:
        raise SettingsError("tls_names: the site certificate needs at least one name")
    paths = raw.get("open_paths", list(GatewaySettings.open_paths))
    if not isinstance(paths, list) or not all(isinstance(p, str) and p.startswith("/") for p in paths):
        raise SettingsError("open_paths: must be a list of paths starting with /")
    rpm = _integer(raw, "requests_per_minute", 1, 1_000_000, GatewaySettings.requests_per_minute)
    return GatewaySettings(
        upstream_host=_text(raw, "upstream_host"),
        upstream_port=_integer(raw, "upstream_port", 1, 65535, 0),
        listen_port=_integer(raw, "listen_port", 1024, 65535, GatewaySettings.listen_port),
        metrics_port=_integer(raw, "metrics_port", 1024, 65535, GatewaySettings.metrics_port),
        requests_per_minute=rpm,
        burst=_integer(raw, "burst", 1, 1_000_000, GatewaySettings.burst),
        tls=tls,
        tls_names=tuple(names),
        open_paths=tuple(paths),
        request_timeout_s=_integer(raw, "request_timeout_s", 1, 86_400, GatewaySettings.request_timeout_s),
        revision=str(raw.get("revision", "")),
    )


def read_settings(path: Path) -> GatewaySettings:
    """Settings from ``gateway.json``; SettingsError for a missing, unreadable or invalid file."""
    try:
        raw = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise SettingsError(f"{path}: {type(exc).__name__}: {exc}") from None
    return parse_settings(raw)
