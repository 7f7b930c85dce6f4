"""Crash and engine restarts: the restart policy brings the service back."""

from __future__ import annotations

import subprocess
import time

import pytest

from tests.edge.conftest import REPO, EdgeService, docker


def _kill9(service: EdgeService) -> None:
    """kill -9 the server from its host; for the edge engine, over its ssh like an operator."""
    pid = docker(service.engine, "inspect", "-f", "{{.State.Pid}}", service.plan.name)
    pid_s = pid.stdout.decode().strip()
    assert pid_s and pid_s != "0"
    cmd = ["kill", "-9", pid_s]
    if service.engine == "edge":
        cmd = ["ssh", "tizi-edge", *cmd]
    subprocess.run(cmd, check=True, timeout=30)


def test_kill_9_serving_again_within_5_seconds(fresh_service: EdgeService) -> None:
    before = fresh_service.inspect()["RestartCount"]
    _kill9(fresh_service)
    time.sleep(0.05)
    elapsed = fresh_service.wait_serving(5)
    assert elapsed < 5
    assert fresh_service.inspect()["RestartCount"] == before + 1


@pytest.mark.parametrize("fresh_service", ["edge"], indirect=True)
def test_engine_restart_serving_again(fresh_service: EdgeService) -> None:
    """Restart the edge engine only: the default engine may be shared with other work."""
    proc = subprocess.run(
        [str(REPO / "scripts" / "engines.sh"), "restart-edge"], capture_output=True, text=True,
        timeout=180,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    fresh_service.wait_serving(30)
    assert fresh_service.inspect()["State"]["Running"] is True
