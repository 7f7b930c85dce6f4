"""Shared by the gateway tests: the gateway package on sys.path, and the Envoy binary."""

from __future__ import annotations

import os
import shutil
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
GATEWAY_SRC = REPO / "service" / "gateway"
if str(GATEWAY_SRC) not in sys.path:
    sys.path.insert(0, str(GATEWAY_SRC))

ENVOY_VERSION = "1.40.0"


def envoy_binary() -> str | None:
    """Envoy as scripts/build-gateway-image.sh caches it (or TIZI_ENVOY, or one on PATH)."""
    cache = Path(os.environ.get("TIZI_CACHE", Path.home() / ".cache" / "tizi"))
    for candidate in (
        os.environ.get("TIZI_ENVOY"),
        str(cache / "envoy" / ENVOY_VERSION / "envoy"),
        shutil.which("envoy"),
    ):
        if candidate and os.access(candidate, os.X_OK):
            return candidate
    return None
