"""An `up` killed half-way converges on the next run: stale lock cleared, pending create resolved."""

from __future__ import annotations

import os
import subprocess
import time

from tests.conftest import REPO
from tests.engine_support import http_status, wait_for

from .conftest import containers, docker, local_copy

PORT = 28300
LABEL = "tizi.ma/ministry=enginekill"


def test_killed_up_converges_on_the_next_run(engine_tools, tmp_path):
    project = local_copy(tmp_path, "unix:///var/run/docker.sock", PORT, "enginekill")
    for leftover in containers(
        LABEL, component=None
    ):  # from an earlier run of this test that was itself killed
        docker("rm", "-f", leftover["Id"])
    for network in docker("network", "ls", "-q", "--filter", "name=tizi-enginekill").stdout.split():
        docker("network", "rm", network)
    env = {**os.environ, "PULUMI_BACKEND_URL": f"file://{project.state_dir}"}
    project.state_dir.mkdir(parents=True, exist_ok=True)
    up = subprocess.Popen([str(REPO / ".venv" / "bin" / "tizi"), "up", "--stack", "local", "--work-dir",
                           str(project.work_dir)], env=env, start_new_session=True,
                          stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)  # fmt: skip
    try:
        # kill it while the container is being created and waited for
        assert wait_for(
            lambda: docker("ps", "-aq", "--filter", "name=tizi-enginekill").stdout.strip() != "",
            timeout=120,
            interval=0.1,
        ), "the first up never reached the container"
    finally:
        # everything of that update dies at once, as in a crash: tizi, the pulumi CLI (its own
        # process group) and the provider, all in the session the update was started in
        subprocess.run(["pkill", "-KILL", "-s", str(up.pid)], check=False)
        up.wait()
    time.sleep(1)
    locks = list(project.state_dir.glob(".pulumi/locks/**/*.json"))
    assert locks, "the killed update left its lock, as a real crash does"

    stack = project.stack("local")  # clears the stale lock
    try:
        result = stack.up()
        assert result.summary.result == "succeeded"
        assert len(containers(LABEL)) == 1
        key = project.api_keys("local")[0]
        assert wait_for(lambda: http_status(f"http://127.0.0.1:{PORT}/v1/models", key) == 200, timeout=30)
        assert set(stack.up().summary.resource_changes) == {"same"}, "converged: nothing left to do"
    finally:
        stack.destroy()
        stack.workspace.remove_stack("local")
    assert containers(LABEL, component=None) == []
