"""Session fixtures for the engine tier: the real Pulumi engine against real Docker engines.

Stacks are deployed from a copy of the project with its own file backend; the copy of
the `local` stack gets its own ministry name and host port so a developer's own
`make up` keeps running beside the tests.
"""

from __future__ import annotations

import json
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from components.spec.labels import COMPONENT_LABEL
from tests.conftest import require
from tests.docker_support import docker as shared_docker
from tests.engine_support import edit_stack, project_copy, require_plugins, require_tools

IMAGE = "tizi/inference-service:0.1.0"
ENGINE_PORT = 28080
SSH_EDGE = "ssh://tizi-edge"


def docker(*args: str, host: str | None = None, check: bool = True) -> subprocess.CompletedProcess[str]:
    """The shared helper, text output, failures as the result (the engine tier inspects them)."""
    return shared_docker(*args, host=host, check=check)


@pytest.fixture(scope="session")
def engine_tools() -> None:
    require_tools("pulumi", "docker")
    require_plugins("docker")
    require(docker("info", check=False).returncode == 0, "no Docker engine: run scripts/engines.sh start")
    require(
        docker("image", "inspect", IMAGE, check=False).returncode == 0,
        f"{IMAGE} missing: scripts/build-image.sh",
    )


@dataclass
class Project:
    work_dir: Path
    state_dir: Path

    def stack(self, name: str):
        from components.ops.engine import select_stack

        return select_stack(name, self.work_dir, state_dir=self.state_dir)

    def api_keys(self, name: str) -> list[str]:
        config = self.stack(name).get_config("tizi:apiKeys")
        return [k for k in config.value.split(",") if k]


#: gateway limits for tests that measure rolls under a steady client, not the limits
UNLIMITED = {"requestsPerMinute": 100_000, "burst": 10_000}


def clear_leftovers(ministry: str, host: str) -> None:
    """Remove what a killed earlier run of a test left on the engine (its state went with it):
    containers, then the site network and volumes, all named ``tizi-<ministry>-…``."""
    engine = None if host.startswith("unix:///var/run/docker.sock") else host
    ids = docker("ps", "-aq", "--filter", f"label=tizi.ma/ministry={ministry}", host=engine).stdout.split()
    if ids:
        docker("rm", "-f", *ids, host=engine)
    listings = {"network": ("network", "ls", "--format", "{{.Name}}"), "volume": ("volume", "ls", "-q")}
    for kind, listing in listings.items():
        names = [n for n in docker(*listing, host=engine).stdout.split() if n.startswith(f"tizi-{ministry}-")]
        if names:
            docker(kind, "rm", *names, host=engine, check=False)


def local_copy(root: Path, host: str, port: int, ministry: str, gateway: dict | None = None) -> Project:
    clear_leftovers(ministry, host)
    work_dir = project_copy(root / "project", ["local"])

    def change(config: dict) -> None:
        config["tizi:ministry"] = ministry
        target = config["tizi:targets"][0]
        target.update(host=host, hostPort=port, metricsPort=port + 1)
        if gateway is not None:
            config["tizi:gateway"] = gateway

    edit_stack(work_dir, "local", change)
    return Project(work_dir, root / "state")


@pytest.fixture(scope="session")
def local_project(engine_tools, tmp_path_factory) -> Iterator[Project]:
    project = local_copy(
        tmp_path_factory.mktemp("engine-local"), "unix:///var/run/docker.sock", ENGINE_PORT, "enginetest"
    )
    yield project
    stack = project.stack("local")
    stack.destroy()
    stack.workspace.remove_stack("local")


def containers(label_filter: str, host: str | None = None, component: str | None = "edge") -> list[dict]:
    """Containers carrying a label; by default only the service (``org.tizi.component=edge``),
    ``component=None`` for every container of the stack (the key writer included)."""
    filters = ["--filter", f"label={label_filter}"]
    if component:
        filters += ["--filter", f"label={COMPONENT_LABEL}={component}"]
    ids = docker("ps", "-aq", *filters, host=host).stdout.split()
    return json.loads(docker("inspect", *ids, host=host).stdout) if ids else []


def volumes(name_prefix: str, host: str | None = None) -> list[str]:
    names = docker("volume", "ls", "-q", host=host).stdout.split()
    return [n for n in names if n.startswith(name_prefix)]
