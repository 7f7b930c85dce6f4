"""A valid stack's settings to mutate in tests, and a helper to set a dotted key."""

from __future__ import annotations

import copy
import re
from typing import Any

VALID: dict[str, Any] = {
    "ministry": "health",
    "environment": "prod",
    "dataClass": "sensitive",
    "region": "ma-benguerir",
    "fallbackRegions": ["ma-casablanca-nplusone"],
    "languages": ["ar", "ary", "zgh", "fr"],
    "service": {
        "name": "inference",
        "image": "tizi/inference-service:0.1.0",
        "port": 8080,
        "env": {"LOG_LEVEL": "info"},
        "secrets": ["apiKeys"],
        "health": {"startup": "/healthz", "liveness": "/healthz", "readiness": "/readyz"},
    },
    "model": {
        "name": "tizi-langid-ma",
        "source": "image:/opt/tizi/model",
        "size": "50Mi",
        "languages": ["ar", "ary", "zgh", "fr", "en"],
    },
    "resources": {"cpu": "500m", "memory": "512Mi"},
    "scaling": {"min": 2, "max": 4, "targetConcurrency": 10},
    "targets": [
        {"kind": "kubernetes", "name": "cluster", "context": "kind-tizi"},
        {
            "kind": "edge",
            "name": "clinic-ifrane",
            "site": "ma-edge-clinic-ifrane",
            "host": "ssh://tech@clinic-ifrane",
            "hostPort": 18080,
        },
    ],
}

API_KEYS = "k1-aaaaaaaaaaaaaaaaaaaaaaaa,k2-bbbbbbbbbbbbbbbbbbbbbbbb"

_INDEX = re.compile(r"^(\w+)\[(\d+)\]$")


def valid_settings() -> dict[str, Any]:
    return copy.deepcopy(VALID)


def with_value(path: str, value: Any) -> dict[str, Any]:
    """A copy of VALID with ``path`` (``a.b``, ``targets[1].site``) set, or removed if value is DELETE."""
    settings = valid_settings()
    node: Any = settings
    parts = path.split(".")
    for part in parts[:-1]:
        match = _INDEX.match(part)
        node = node[match.group(1)][int(match.group(2))] if match else node.setdefault(part, {})
    last = parts[-1]
    match = _INDEX.match(last)
    if match:
        node[match.group(1)][int(match.group(2))] = value
    elif value is DELETE:
        node.pop(last, None)
    else:
        node[last] = value
    return settings


DELETE = object()
