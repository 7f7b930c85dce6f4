"""Shared helpers for the tiers that run the real Pulumi engine (engine, cluster).

Each test session works on a copy of the project (Pulumi.yaml and stacks/) in a temp
folder with its own file backend, so tests never touch the user's stacks or state.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from threading import Event, Thread

import yaml

from tests.conftest import REPO, require


def require_tools(*names: str) -> None:
    """Every named executable on PATH (the toolchain's `env` puts them there)."""
    for name in names:
        require(
            shutil.which(name) is not None, f'{name} not on PATH: run `eval "$(scripts/toolchain.sh env)"`'
        )


def require_plugins(*names: str) -> None:
    """Resource plugins the engine will find (on PATH or registered in PULUMI_HOME)."""
    require_tools("pulumi")
    listed = subprocess.run(["pulumi", "plugin", "ls", "--json"], capture_output=True, text=True)
    found = {p["name"] for p in json.loads(listed.stdout or "[]")} if listed.returncode == 0 else set()
    for name in names:
        require(
            name in found or shutil.which(f"pulumi-resource-{name}") is not None,
            f"resource plugin {name} not found: run scripts/toolchain.sh ensure",
        )


def project_copy(root: Path, stacks: list[str]) -> Path:
    """A throwaway project folder holding Pulumi.yaml and the named stack files."""
    (root / "stacks").mkdir(parents=True, exist_ok=True)
    shutil.copy(REPO / "Pulumi.yaml", root / "Pulumi.yaml")
    for stack in stacks:
        shutil.copy(REPO / "stacks" / f"Pulumi.{stack}.yaml", root / "stacks" / f"Pulumi.{stack}.yaml")
    return root


def edit_stack(work_dir: Path, stack: str, change: Callable[[dict], None]) -> None:
    """Edit a copied stack file's config in place (YAML round trip; comments are not kept)."""
    path = work_dir / "stacks" / f"Pulumi.{stack}.yaml"
    document = yaml.safe_load(path.read_text())
    change(document["config"])
    path.write_text(yaml.safe_dump(document, sort_keys=False))


def raw_state(state_dir: Path, stack: str) -> str:
    """The stack's checkpoint as stored by the file backend (``export_stack`` would decrypt secrets)."""
    matches = sorted(state_dir.glob(f".pulumi/stacks/**/{stack}.json"))
    if not matches:
        raise FileNotFoundError(f"no checkpoint for stack {stack} under {state_dir}")
    return matches[0].read_text()


def helm_prerequisites(namespace: str, key: str) -> list[dict]:
    """What the chart expects to exist when installed without Pulumi: a restricted namespace
    and the Secret holding the API keys (the Kubernetes component creates both)."""
    return [
        {
            "apiVersion": "v1",
            "kind": "Namespace",
            "metadata": {"name": namespace, "labels": {"pod-security.kubernetes.io/enforce": "restricted"}},
        },
        {
            "apiVersion": "v1",
            "kind": "Secret",
            "metadata": {"name": "inference-api-keys", "namespace": namespace},
            "stringData": {"key-0": key},
        },
    ]


def http_status(url: str, key: str | None = None, timeout: float = 3.0) -> int:
    request = urllib.request.Request(url, headers={"Authorization": f"Bearer {key}"} if key else {})
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            return response.status
    except urllib.error.HTTPError as error:
        return error.code
    except OSError:
        return 0


def wait_for(predicate: Callable[[], bool], timeout: float, interval: float = 0.5) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(interval)
    return predicate()


@dataclass
class LoopResult:
    statuses: list[int] = field(default_factory=list)

    @property
    def failures(self) -> list[int]:
        return [s for s in self.statuses if s != 200]


@contextmanager
def steady_client(
    url: str, key: str, interval: float = 0.05, max_seconds: float = 600
) -> Iterator[LoopResult]:
    """A bounded request loop in the background; the caller asserts on its statuses."""
    result, stop = LoopResult(), Event()

    def loop() -> None:
        started = time.monotonic()
        while not stop.is_set() and time.monotonic() - started < max_seconds:
            result.statuses.append(http_status(url, key))
            time.sleep(interval)

    thread = Thread(target=loop, daemon=True)
    thread.start()
    try:
        yield result
    finally:
        stop.set()
        thread.join(timeout=10)


def run(*args: str, check: bool = True, **kwargs) -> subprocess.CompletedProcess:
    return subprocess.run(list(args), check=check, capture_output=True, text=True, **kwargs)
