#!/usr/bin/env python3
"""Latency the gateway adds: the same requests straight to the payload and through the gateway,
interleaved in the same run.

    .venv/bin/python bench/bench_gateway.py [--requests 2000] [--rounds 3] [--concurrency 1]

On the default Docker engine: a private network, the reference payload (tizi/inference-service)
on it as the edge plan configures it, and tizi/gateway in front of it (settings and keys from a
temporary directory, TLS off: the edge's loopback configuration). Both paths are published on
127.0.0.1, so each goes through the same docker-proxy hop; the gateway path adds Envoy's
key route, token bucket, per-key statistics and access log. Each round sends --requests
GET /v1/models with a key over keep-alive connections, first direct then through the gateway;
p50 and p99 are over all rounds. The figure to read is the difference (added latency) and the
ratio, not the absolute times: the machine is shared.
"""

from __future__ import annotations

import argparse
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
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from components.targets.edge_plan import plan_edge_container  # noqa: E402
from components.targets.gateway_plan import GATEWAY_IMAGE, LISTEN_PORT  # noqa: E402

PAYLOAD_IMAGE = "tizi/inference-service:0.1.0"


def docker(*args: str, check: bool = True) -> str:
    result = subprocess.run(["docker", *args], capture_output=True, text=True, check=False)
    if check and result.returncode != 0:
        raise SystemExit(f"docker {' '.join(args[:3])}: {result.stderr.strip()}")
    return result.stdout


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_ready(port: int, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            conn = http.client.HTTPConnection("127.0.0.1", port, timeout=2)
            conn.request("GET", "/readyz")
            if conn.getresponse().status == 200:
                return
        except OSError:
            pass
        time.sleep(0.2)
    raise SystemExit(f"port {port} never became ready")


def measure(port: int, key: str, requests: int, concurrency: int) -> list[float]:
    """Latencies in ms of `requests` keep-alive GETs split over `concurrency` clients."""
    latencies: list[float] = []
    lock = threading.Lock()
    headers = {"Authorization": f"Bearer {key}"}

    def client(count: int) -> None:
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
        mine = []
        for _ in range(count):
            start = time.perf_counter()
            conn.request("GET", "/v1/models", headers=headers)
            response = conn.getresponse()
            response.read()
            mine.append((time.perf_counter() - start) * 1000)
            if response.status != 200:
                raise SystemExit(f"status {response.status} on port {port}")
        conn.close()
        with lock:
            latencies.extend(mine)

    threads = [threading.Thread(target=client, args=(requests // concurrency,)) for _ in range(concurrency)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return latencies


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=2000)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--concurrency", type=int, default=1)
    args = parser.parse_args()
    tag = secrets.token_hex(3)
    network, payload, gateway = f"bench-gw-{tag}", f"bench-payload-{tag}", f"bench-gateway-{tag}"
    key = "bench-" + secrets.token_hex(16)
    work = Path(tempfile.mkdtemp(prefix="bench-gateway-"))
    (work / "keys").mkdir()
    (work / "keys" / "key-0").write_text(key)
    direct_port, gateway_port = free_port(), free_port()
    settings = {
        "upstream_host": payload, "upstream_port": 8080, "listen_port": LISTEN_PORT,
        "requests_per_minute": 1_000_000, "burst": 1_000_000, "tls": "off",
    }  # fmt: skip
    (work / "gateway.json").write_text(json.dumps(settings))
    for path in [work, work / "keys", *work.rglob("*")]:
        path.chmod(0o755 if path.is_dir() else 0o644)
    plan = plan_edge_container(payload, PAYLOAD_IMAGE, network=network, secrets_volume=f"{payload}-keys")
    try:
        docker("network", "create", network)
        docker("volume", "create", plan.secrets_volume)
        docker("run", "--rm", "-i", "--user", "0", "-v", f"{plan.secrets_volume}:/keys", "--entrypoint", "sh",
               PAYLOAD_IMAGE, "-c", f"printf %s '{key}' > /keys/api-key && chown 10001 /keys/api-key && "
               "chmod 400 /keys/api-key")  # fmt: skip
        run_args = plan.docker_run_args()
        image_at = run_args.index(PAYLOAD_IMAGE)
        docker("run", "-d", *run_args[:image_at], "-p", f"127.0.0.1:{direct_port}:8080", *run_args[image_at:])
        docker("run", "-d", "--name", gateway, "--network", network, "--read-only",
               "--tmpfs", "/run/tizi-gateway:uid=10001,gid=10001,mode=0700", "--tmpfs", "/tmp",
               "-v", f"{work}:/cfg:ro", "-p", f"127.0.0.1:{gateway_port}:{LISTEN_PORT}", GATEWAY_IMAGE,
               "run", "--settings", "/cfg/gateway.json", "--keys", "/cfg/keys")  # fmt: skip
        wait_ready(direct_port)
        wait_ready(gateway_port)
        measure(direct_port, key, 200, args.concurrency)  # warm both paths
        measure(gateway_port, key, 200, args.concurrency)
        direct: list[float] = []
        through: list[float] = []
        for _ in range(args.rounds):
            direct += measure(direct_port, key, args.requests, args.concurrency)
            through += measure(gateway_port, key, args.requests, args.concurrency)
    finally:
        docker("rm", "-f", payload, gateway, check=False)
        docker("volume", "rm", "-f", plan.secrets_volume, check=False)
        docker("network", "rm", network, check=False)
    print(f"gateway latency, GET /v1/models, {args.rounds} rounds x {args.requests} requests, "
          f"concurrency {args.concurrency}, keep-alive")  # fmt: skip
    print(f"{'':14}{'p50 ms':>10}{'p99 ms':>10}{'mean ms':>10}")
    for name, values in (("direct", direct), ("via gateway", through)):
        p50, p99 = percentile(values, 0.5), percentile(values, 0.99)
        print(f"{name:14}{p50:>10.3f}{p99:>10.3f}{statistics.mean(values):>10.3f}")
    for label, q in (("p50", 0.5), ("p99", 0.99)):
        added = percentile(through, q) - percentile(direct, q)
        print(f"added at {label}: {added:+.3f} ms ({percentile(through, q) / percentile(direct, q):.2f}x)")


if __name__ == "__main__":
    main()
