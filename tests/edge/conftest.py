"""Real Docker engines for the edge tests: the default engine and the ssh:// edge engine.

Session fixtures call scripts/engines.sh (installs docker.io and openssh-server if missing,
starts both engines and the edge sshd) and scripts/build-image.sh (builds or reuses the
image, then it is loaded into the edge engine). Containers are configured exactly by
components.edge_plan.plan_edge_container: `docker create` with its arguments, the key files
copied in with `docker cp` (what pulumi-docker's `uploads` do), then `docker start`.
Everything talks only to this machine: unix sockets, 127.0.0.1 and ssh to 127.0.0.1:2222.
"""

from __future__ import annotations

import http.client
import io
import json
import os
import secrets
import shutil
import socket
import subprocess
import tarfile
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from components.targets.edge_plan import EdgeContainerPlan, plan_edge_container
from tests.conftest import require
from tests.docker_support import docker as shared_docker
from tests.docker_support import docker_env as shared_docker_env

REPO = Path(__file__).resolve().parents[2]
ENGINES: dict[str, str | None] = {"default": None, "edge": "ssh://tizi-edge"}
IMAGE = "tizi/inference-service:0.1.0"


def docker_env(engine: str) -> dict[str, str]:
    return shared_docker_env(ENGINES[engine])


def docker(
    engine: str, *args: str, check: bool = True, data: bytes | None = None, timeout: float = 180
) -> subprocess.CompletedProcess[bytes]:
    """The shared helper on a named engine of this tier, with bytes output."""
    return shared_docker(*args, host=ENGINES[engine], check=check, data=data, timeout=timeout, text=False)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def http_request(
    port: int, method: str, path: str, key: str | None = None, body: Any = None,
    timeout: float = 5,
) -> tuple[int, bytes]:  # fmt: skip
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
    headers = {"Authorization": f"Bearer {key}"} if key else {}
    data = None
    if body is not None:
        data = json.dumps(body).encode()
        headers["Content-Type"] = "application/json"
    try:
        conn.request(method, path, body=data, headers=headers)
        resp = conn.getresponse()
        return resp.status, resp.read()
    finally:
        conn.close()


@dataclass
class EdgeService:
    """One running service container, configured by the edge plan, on one engine."""

    engine: str
    plan: EdgeContainerPlan
    keys: dict[str, str]
    removed: bool = field(default=False)

    @property
    def port(self) -> int:
        return self.plan.host_port

    def get(self, path: str, key: str | None = None) -> tuple[int, bytes]:
        return http_request(self.port, "GET", path, key)

    def chat(self, text: str, key: str) -> tuple[int, dict[str, Any]]:
        status, body = http_request(
            self.port, "POST", "/v1/chat/completions", key,
            {"model": "tizi-langid-ma", "messages": [{"role": "user", "content": text}]},
        )  # fmt: skip
        return status, json.loads(body)

    def metrics_showing(self, expected: list[str], timeout: float = 2) -> str:
        """The /metrics text once it holds every expected line, or the last text after `timeout`.

        The service counts a request just after its response is written (a response that could
        not be written counts as a disconnect instead), so a scrape sent the moment a reply
        arrives can be served before that reply's thread has counted it: poll briefly.
        """
        deadline = time.monotonic() + timeout
        while True:
            status, body = self.get("/metrics")
            assert status == 200, f"/metrics answered {status}"
            text = body.decode()
            if all(line in text for line in expected) or time.monotonic() > deadline:
                return text
            time.sleep(0.02)

    def serving(self) -> bool:
        try:
            key = next(iter(self.keys.values()))
            return self.get("/readyz")[0] == 200 and self.get("/v1/models", key)[0] == 200
        except OSError:
            return False

    def wait_serving(self, timeout: float) -> float:
        """Seconds until ready and an authenticated request succeeds; AssertionError after."""
        start = time.monotonic()
        while time.monotonic() - start < timeout:
            if self.serving():
                return time.monotonic() - start
            time.sleep(0.05)
        logs = docker(self.engine, "logs", "--tail", "20", self.plan.name, check=False)
        raise AssertionError(
            f"{self.plan.name} on {self.engine} not serving after {timeout}s: "
            f"{logs.stdout.decode()[-1500:]} {logs.stderr.decode()[-1500:]}"
        )

    def inspect(self) -> dict[str, Any]:
        return json.loads(docker(self.engine, "inspect", self.plan.name).stdout)[0]

    def remove(self) -> None:
        """Remove the container and both its volumes; retried, since an ssh connection to
        an engine that was just restarted can fail once."""
        if self.removed:
            return
        docker(self.engine, "rm", "-f", self.plan.key_writer_name, check=False)
        for _ in range(3):
            docker(self.engine, "rm", "-f", "-v", self.plan.name, check=False)
            if docker(self.engine, "inspect", self.plan.name, check=False).returncode != 0:
                break
            time.sleep(1)
        for volume in (self.plan.secrets_volume, self.plan.model_volume):
            docker(self.engine, "volume", "rm", "-f", volume, check=False)
        self.removed = True


def upload_tar(files: dict[str, str]) -> bytes:
    """Files as pulumi-docker's ``uploads`` send them: one tar entry per file under its full
    path, mode 0644, no owner, for a copy to ``/`` of the container."""
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as tar:
        for path, value in files.items():
            raw = value.encode()
            info = tarfile.TarInfo(path)
            info.size, info.mode = len(raw), 0o644
            tar.addfile(info, io.BytesIO(raw))
    return buf.getvalue()


def key_uploads(plan: EdgeContainerPlan, keys: dict[str, str]) -> bytes:
    return upload_tar({plan.secret_files[name]: value for name, value in keys.items()})


def start_service(engine: str, image: str, label: str) -> EdgeService:
    """The key writer with its uploads, then the service per the plan; wait for 200."""
    keys = {"key-a": "tizi-" + secrets.token_hex(16), "key-b": "tizi-" + secrets.token_hex(16)}
    name = f"tizi-test-{label}-{engine}-{uuid.uuid4().hex[:6]}"
    plan = plan_edge_container(
        name, image, host_port=free_port(), secret_names=list(keys),
        health_paths={"readiness": "/readyz", "liveness": "/healthz"},
        labels={"org.tizi.test": "edge"},
    )  # fmt: skip
    service = EdgeService(engine, plan, keys)
    try:
        docker(engine, "create", *plan.key_writer_run_args())
        docker(engine, "cp", "-", f"{plan.key_writer_name}:/", data=key_uploads(plan, keys))
        docker(engine, "create", *plan.docker_run_args())
        docker(engine, "start", name)
        service.wait_serving(30)
    except BaseException:
        service.remove()
        raise
    return service


@pytest.fixture(scope="session")
def engines() -> dict[str, str | None]:
    require(os.geteuid() == 0, "the edge tests start Docker engines: run them as root")
    require(
        shutil.which("apt-get") is not None or shutil.which("dockerd") is not None,
        "neither dockerd nor apt-get to install it",
    )
    proc = subprocess.run(
        [str(REPO / "scripts" / "engines.sh"), "start"], capture_output=True, text=True,
        timeout=900,
    )  # fmt: skip
    require(proc.returncode == 0, f"scripts/engines.sh start failed: {proc.stderr[-2000:]}")
    return ENGINES


@pytest.fixture(scope="session")
def image(engines: dict[str, str | None]) -> str:
    """The service image on both engines (built or reused by content hash)."""
    proc = subprocess.run(
        [str(REPO / "scripts" / "build-image.sh")], capture_output=True, text=True, timeout=1800
    )
    require(proc.returncode == 0, f"scripts/build-image.sh failed: {proc.stderr[-2000:]}")
    default_id = docker("default", "image", "inspect", "-f", "{{.Id}}", IMAGE).stdout.strip()
    edge = docker("edge", "image", "inspect", "-f", "{{.Id}}", IMAGE, check=False)
    if edge.returncode != 0 or edge.stdout.strip() != default_id:
        load = subprocess.run(
            [str(REPO / "scripts" / "engines.sh"), "load-edge", IMAGE], capture_output=True,
            text=True, timeout=600,
        )  # fmt: skip
        assert load.returncode == 0, load.stderr
    return IMAGE


@pytest.fixture(scope="module", params=sorted(ENGINES))
def service(request: pytest.FixtureRequest, image: str) -> Iterator[EdgeService]:
    """A long-lived container per engine for the read-only checks."""
    svc = start_service(request.param, image, "svc")
    yield svc
    svc.remove()


@pytest.fixture(params=sorted(ENGINES))
def fresh_service(request: pytest.FixtureRequest, image: str) -> Iterator[EdgeService]:
    """A container of its own, for tests that kill things."""
    svc = start_service(request.param, image, "fresh")
    yield svc
    svc.remove()
