"""Session fixtures for the cluster tier: the real cluster, and the `kind` stack deployed on it.

The cluster comes from `scripts/cluster.sh start` (or kind where it works); its context
is read from TIZI_KUBE_CONTEXT (default kind-tizi).  The `kind` stack is deployed once
per session with the real engine, from a copy of the project with its own state, and
destroyed at the end.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.conftest import require
from tests.engine_support import project_copy, require_plugins, require_tools, run

NAMESPACE = "tests-dev"
SERVICE = "inference"


@pytest.fixture(scope="session")
def kube_context() -> str:
    context = os.environ.get("TIZI_KUBE_CONTEXT", "kind-tizi")
    require_tools("kubectl", "helm", "pulumi")
    require_plugins("kubernetes")
    probe = run("kubectl", "--context", context, "get", "--raw", "/readyz", check=False)
    require(
        probe.returncode == 0,
        f"no cluster answers for context {context}: run scripts/cluster.sh start "
        f"({probe.stderr.strip()[:200]})",
    )
    return context


@pytest.fixture(scope="session")
def core(kube_context):
    from kubernetes import client, config

    config.load_kube_config(context=kube_context)
    return client


@dataclass
class DeployedStack:
    stack: object
    work_dir: Path
    state_dir: Path
    outputs: dict
    up_stdout: str


@pytest.fixture(scope="session")
def kind_stack(kube_context, tmp_path_factory) -> Iterator[DeployedStack]:
    from components.ops.engine import select_stack
    from tests.engine_support import edit_stack

    work_dir = project_copy(tmp_path_factory.mktemp("kind-project"), ["kind"])
    # the rolls here measure lost requests under a steady client, not the gateway's limits
    # (tests/cluster/test_gateway.py does those)
    edit_stack(
        work_dir,
        "kind",
        lambda c: c.update({"tizi:gateway": {"requestsPerMinute": 100_000, "burst": 10_000}}),
    )
    if kube_context != "kind-tizi":
        edit_stack(work_dir, "kind", lambda c: c["tizi:targets"][0].update(context=kube_context))
    state_dir = tmp_path_factory.mktemp("kind-state")
    stack = select_stack("kind", work_dir, state_dir=state_dir)
    lines: list[str] = []
    result = stack.up(on_output=lines.append)
    try:
        yield DeployedStack(
            stack, work_dir, state_dir, {k: v.value for k, v in result.outputs.items()}, "".join(lines)
        )
    finally:
        stack.destroy()
        stack.workspace.remove_stack("kind")
