"""Prometheus metrics written by hand: a few families do not justify a dependency.

Text exposition format 0.0.4. Route labels are the fixed route names (unknown paths are
"other") so a scanner hitting random URLs cannot blow up the series count.
"""

from __future__ import annotations

import threading
from collections import defaultdict

BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0)


class Metrics:
    """Thread-safe counters, one latency histogram per route, and model gauges."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.requests: dict[tuple[str, str, str], int] = defaultdict(int)
        self.errors: dict[tuple[str, str], int] = defaultdict(int)
        self.hist: dict[str, list[int]] = {}
        self.hist_sum: dict[str, float] = defaultdict(float)
        self.hist_count: dict[str, int] = defaultdict(int)
        self.model_load_seconds = 0.0
        self.model_loaded = 0
        self.inflight = 0
        self.detections: dict[tuple[str, str], int] = defaultdict(int)
        self.disconnects: dict[str, int] = defaultdict(int)

    def observe(self, route: str, method: str, code: int, seconds: float) -> None:
        with self._lock:
            self.requests[(route, method, str(code))] += 1
            if code >= 400:
                self.errors[(route, str(code))] += 1
            counts = self.hist.setdefault(route, [0] * len(BUCKETS))
            for i, b in enumerate(BUCKETS):
                if seconds <= b:
                    counts[i] += 1
            self.hist_sum[route] += seconds
            self.hist_count[route] += 1

    def detection(self, language: str, method: str) -> None:
        with self._lock:
            self.detections[(language, method)] += 1

    def disconnect(self, phase: str) -> None:
        with self._lock:
            self.disconnects[phase] += 1

    def add_inflight(self, delta: int) -> None:
        with self._lock:
            self.inflight += delta

    def render(self) -> str:
        out: list[str] = []
        with self._lock:
            out += [
                "# HELP tizi_requests_total HTTP requests by route, method and status code.",
                "# TYPE tizi_requests_total counter",
            ]
            for (route, method, code), n in sorted(self.requests.items()):
                out.append(f'tizi_requests_total{{route="{route}",method="{method}",code="{code}"}} {n}')
            out += [
                "# HELP tizi_request_errors_total HTTP responses with status >= 400.",
                "# TYPE tizi_request_errors_total counter",
            ]
            for (route, code), n in sorted(self.errors.items()):
                out.append(f'tizi_request_errors_total{{route="{route}",code="{code}"}} {n}')
            out += [
                "# HELP tizi_request_duration_seconds Time from request line to response sent.",
                "# TYPE tizi_request_duration_seconds histogram",
            ]
            for route in sorted(self.hist):
                for b, n in zip(BUCKETS, self.hist[route], strict=True):
                    out.append(f'tizi_request_duration_seconds_bucket{{route="{route}",le="{b}"}} {n}')
                out.append(
                    f'tizi_request_duration_seconds_bucket{{route="{route}",le="+Inf"}} '
                    f"{self.hist_count[route]}"
                )
                out.append(f'tizi_request_duration_seconds_sum{{route="{route}"}} {self.hist_sum[route]:.6f}')
                out.append(f'tizi_request_duration_seconds_count{{route="{route}"}} {self.hist_count[route]}')
            out += [
                "# HELP tizi_detections_total Language answers by language and deciding method.",
                "# TYPE tizi_detections_total counter",
            ]
            for (lang, method), n in sorted(self.detections.items()):
                out.append(f'tizi_detections_total{{language="{lang}",method="{method}"}} {n}')
            out += [
                "# HELP tizi_client_disconnects_total Clients gone before their exchange finished, by phase.",
                "# TYPE tizi_client_disconnects_total counter",
            ]
            for phase, n in sorted(self.disconnects.items()):
                out.append(f'tizi_client_disconnects_total{{phase="{phase}"}} {n}')
            out += [
                "# HELP tizi_model_load_seconds Seconds spent loading the model at start.",
                "# TYPE tizi_model_load_seconds gauge",
                f"tizi_model_load_seconds {self.model_load_seconds:.6f}",
                "# HELP tizi_model_loaded 1 once the model is loaded and requests are served.",
                "# TYPE tizi_model_loaded gauge",
                f"tizi_model_loaded {self.model_loaded}",
                "# HELP tizi_inflight_requests Requests being handled now.",
                "# TYPE tizi_inflight_requests gauge",
                f"tizi_inflight_requests {self.inflight}",
            ]
        return "\n".join(out) + "\n"
