#!/usr/bin/env python3
"""Benchmark the service container against a hello-world baseline, in the same run.

    .venv/bin/python bench/bench_edge.py [--duration 20] [--concurrency 8] [--runs 5]

For the service image and for a baseline (a minimal Python hello-world server built on the
same local/debian:bookworm base), on the default engine:

- image size;
- cold start: `docker start` -> first 200 from the readiness URL, median of --runs;
- p50/p99 latency and requests/s at --concurrency keep-alive clients for --duration seconds
  (service: POST /v1/chat/completions with a short Darija sentence; baseline: GET /);
- resident memory (VmRSS of the server process) after the load.

The machine is shared and noisy, so absolute figures move; the ratios to the baseline,
measured minutes apart on the same engine, are the figures to compare across runs. The
service runs exactly as the edge plan configures it (components/targets/edge_plan.py).
"""

from __future__ import annotations

import argparse
import hashlib
import http.client
import json
import secrets
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from components.targets.edge_plan import plan_edge_container  # noqa: E402

IMAGE = "tizi/inference-service:0.1.0"
BASELINE_SERVER = """
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
class H(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    disable_nagle_algorithm = True  # as the service does: no 40 ms delayed-ACK stalls
    def do_GET(self):
        body = b"hello"
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)
    def log_message(self, *a):
        pass
ThreadingHTTPServer(("0.0.0.0", 8080), H).serve_forever()
"""
BASELINE_DOCKERFILE = """FROM local/debian:bookworm
RUN apt-get update && apt-get install -y --no-install-recommends python3 \\
 && apt-get clean && rm -rf /var/lib/apt/lists/* /var/cache/apt/*
COPY hello.py /hello.py
USER 10001:10001
CMD ["python3", "/hello.py"]
"""
# Tagged by content so an edited baseline is rebuilt.
BASELINE = (
    "tizi/bench-baseline:" + hashlib.sha256((BASELINE_SERVER + BASELINE_DOCKERFILE).encode()).hexdigest()[:12]
)
SHORT_INPUT = "salam, bghit njdd la carte dyali"


def sh(*args: str, check: bool = True, data: bytes | None = None) -> str:
    proc = subprocess.run(args, input=data, capture_output=True, check=False)
    if check and proc.returncode != 0:
        raise SystemExit(f"{' '.join(args)} failed: {proc.stderr.decode()}")
    return proc.stdout.decode().strip()


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def ensure_baseline() -> None:
    if subprocess.run(["docker", "image", "inspect", BASELINE], capture_output=True).returncode:
        with tempfile.TemporaryDirectory() as ctx:
            Path(ctx, "hello.py").write_text(BASELINE_SERVER)
            Path(ctx, "Dockerfile").write_text(BASELINE_DOCKERFILE)
            sh("docker", "build", "-q", "-t", BASELINE, ctx)


@dataclass
class Target:
    """How to create, call and probe one of the two containers."""

    label: str
    image: str
    create_args: list[str]
    port: int
    ready_path: str
    method: str
    path: str
    body: bytes | None
    headers: dict[str, str]
    key_tar: bytes | None = None
    name: str = ""


def service_target(name: str) -> Target:
    import io
    import tarfile

    key = "bench-" + secrets.token_hex(16)
    port = free_port()
    plan = plan_edge_container(name, IMAGE, host_port=port, secret_names=["bench"])
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as tar:
        info = tarfile.TarInfo("bench")
        info.size = len(key)
        tar.addfile(info, io.BytesIO(key.encode()))
    body = json.dumps(
        {"model": "tizi-langid-ma", "messages": [{"role": "user", "content": SHORT_INPUT}]}
    ).encode()
    return Target(
        "service", IMAGE, plan.docker_run_args(), port, "/readyz", "POST",
        "/v1/chat/completions", body,
        {"Authorization": f"Bearer {key}", "Content-Type": "application/json"},
        buf.getvalue(), name,
    )  # fmt: skip


def baseline_target(name: str) -> Target:
    port = free_port()
    args = ["--name", name, "--read-only", "--user", "10001:10001",
            "--publish", f"127.0.0.1:{port}:8080/tcp", BASELINE]  # fmt: skip
    return Target("baseline", BASELINE, args, port, "/", "GET", "/", None, {}, None, name)


def wait_200(port: int, path: str, timeout: float = 30) -> float:
    start = time.perf_counter()
    while time.perf_counter() - start < timeout:
        try:
            conn = http.client.HTTPConnection("127.0.0.1", port, timeout=1)
            conn.request("GET", path)
            if conn.getresponse().status == 200:
                return time.perf_counter() - start
        except OSError:
            pass
        finally:
            conn.close()
        time.sleep(0.01)
    raise SystemExit(f"no 200 from :{port}{path} within {timeout}s")


def create(t: Target) -> None:
    sh("docker", "rm", "-f", "-v", t.name, check=False)
    sh("docker", "create", *t.create_args)
    if t.key_tar:
        sh("docker", "cp", "-", f"{t.name}:/run/secrets/tizi", data=t.key_tar)


def remove(t: Target) -> None:
    sh("docker", "rm", "-f", "-v", t.name, check=False)
    sh("docker", "volume", "rm", "-f", f"{t.name}-secrets", check=False)


def cold_start(make: callable, runs: int) -> float:  # type: ignore[valid-type]
    times = []
    for i in range(runs):
        t = make(f"tizi-bench-{i}")
        create(t)
        start = time.perf_counter()
        sh("docker", "start", t.name)
        times.append(time.perf_counter() - start + wait_200(t.port, t.ready_path))
        remove(t)
    return statistics.median(times)


def load(t: Target, concurrency: int, duration: float) -> dict[str, float]:
    latencies: list[float] = []
    errors = [0]
    lock = threading.Lock()
    stop_at = time.perf_counter() + duration

    def worker() -> None:
        conn = http.client.HTTPConnection("127.0.0.1", t.port, timeout=10)
        mine: list[float] = []
        while time.perf_counter() < stop_at:
            s = time.perf_counter()
            try:
                conn.request(t.method, t.path, body=t.body, headers=t.headers)
                resp = conn.getresponse()
                resp.read()
                ok = resp.status == 200
            except OSError:
                ok = False
                conn.close()
                conn = http.client.HTTPConnection("127.0.0.1", t.port, timeout=10)
            if ok:
                mine.append(time.perf_counter() - s)
            else:
                with lock:
                    errors[0] += 1
        with lock:
            latencies.extend(mine)

    threads = [threading.Thread(target=worker) for _ in range(concurrency)]
    begin = time.perf_counter()
    for th in threads:
        th.start()
    for th in threads:
        th.join()
    wall = time.perf_counter() - begin
    latencies.sort()
    q = statistics.quantiles(latencies, n=100)
    return {"p50_ms": q[49] * 1000, "p99_ms": q[98] * 1000, "rps": len(latencies) / wall,
            "errors": errors[0], "requests": len(latencies)}  # fmt: skip


def rss_mb(name: str) -> float:
    pid = sh("docker", "inspect", "-f", "{{.State.Pid}}", name)
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def measure(make: callable, runs: int, concurrency: int, duration: float) -> dict[str, float]:  # type: ignore[valid-type]
    first = make("tizi-bench-probe")
    size = int(sh("docker", "image", "inspect", "-f", "{{.Size}}", first.image)) / 1e6
    cold = cold_start(make, runs)
    t = make("tizi-bench-load")
    create(t)
    sh("docker", "start", t.name)
    wait_200(t.port, t.ready_path)
    try:
        figures = load(t, concurrency, duration)
        figures["rss_mb"] = rss_mb(t.name)
    finally:
        remove(t)
    return {"image_mb": size, "cold_start_s": cold, **figures}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--duration", type=float, default=20)
    parser.add_argument("--concurrency", type=int, default=8)
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--json", type=Path, help="also write the figures here")
    args = parser.parse_args()
    sh("docker", "image", "inspect", IMAGE)  # build it first: scripts/build-image.sh
    ensure_baseline()
    base = measure(baseline_target, args.runs, args.concurrency, args.duration)
    svc = measure(service_target, args.runs, args.concurrency, args.duration)
    rows = [("image size (MB)", "image_mb", 250), ("cold start, median (s)", "cold_start_s", 2),
            ("p50 latency (ms)", "p50_ms", None), ("p99 latency (ms)", "p99_ms", 50),
            ("requests/s", "rps", None), ("resident memory (MB)", "rss_mb", 300),
            ("errors", "errors", None)]  # fmt: skip
    print(f"concurrency {args.concurrency}, {args.duration:.0f} s per target, "
          f"cold start median of {args.runs}; service input: {SHORT_INPUT!r}")  # fmt: skip
    print(f"{'figure':<26}{'service':>10}{'baseline':>10}{'ratio':>8}  goal")
    for title, key, goal in rows:
        ratio = svc[key] / base[key] if base[key] else float("nan")
        goal_s = "" if goal is None else f"< {goal} {'ok' if svc[key] < goal else 'MISSED'}"
        print(f"{title:<26}{svc[key]:>10.2f}{base[key]:>10.2f}{ratio:>8.2f}  {goal_s}")
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps({"service": svc, "baseline": base}, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
