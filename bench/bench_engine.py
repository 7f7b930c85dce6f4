"""Benchmark the real engine on the local stack, beside an empty program as baseline.

Prints wall times of `preview`, `up` (create), a no-change `up` and `destroy` of the
local stack (edge target on this machine's Docker engine), the program's own evaluation
under mocks, and the same engine operations for an empty inline program run in the same
go, so the ratios hold on a noisy machine; then the toolchain's versions and its cached
`ensure` time.  Goals (issue 5): `pulumi up` of the local stack under 20 s, program
evaluation under 1 s, cached toolchain check under 1 minute.

    eval "$(scripts/toolchain.sh env)"; .venv/bin/python bench/bench_engine.py
"""

from __future__ import annotations

import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

import pulumi  # noqa: E402
from pulumi import automation as auto  # noqa: E402

from components.ops.engine_env import engine_settings, select_stack  # noqa: E402
from tests.engine_support import edit_stack, project_copy  # noqa: E402
from tests.unit.pulumi_harness import evaluate, stack_config  # noqa: E402
from tests.unit.settings import API_KEYS  # noqa: E402


def timed(action) -> float:
    started = time.perf_counter()
    action()
    return time.perf_counter() - started


def empty_program() -> None:
    pulumi.export("nothing", None)


def baseline_stack(root: Path) -> auto.Stack:
    settings = engine_settings("baseline", state_dir=root / "state")
    options = auto.LocalWorkspaceOptions(
        work_dir=str(root), env_vars=settings.env(), secrets_provider="passphrase",
        project_settings=auto.ProjectSettings(name="baseline", runtime="python"),
    )  # fmt: skip
    return auto.create_or_select_stack(stack_name="baseline", project_name="baseline", program=empty_program,
                                       opts=options)  # fmt: skip


def main() -> None:
    with tempfile.TemporaryDirectory(prefix="tizi-bench-engine-") as tmp:
        root = Path(tmp)
        work_dir = project_copy(root / "project", ["local"])
        edit_stack(
            work_dir,
            "local",
            lambda c: (c.update({"tizi:ministry": "bench"}), c["tizi:targets"][0].update(hostPort=28200)),
        )
        stack = select_stack("local", work_dir, state_dir=root / "state")
        base_dir = root / "baseline"
        base_dir.mkdir()
        base = baseline_stack(base_dir)
        rows = []
        for label, tizi_action, base_action in [
            ("preview", stack.preview, base.preview),
            ("up (create)", stack.up, base.up),
            ("up (no change)", stack.up, base.up),
            ("destroy", stack.destroy, base.destroy),
        ]:
            rows.append((label, timed(tizi_action), timed(base_action)))
        stack.workspace.remove_stack("local")
        base.workspace.remove_stack("baseline")
    config, secret_keys = stack_config(REPO / "stacks" / "Pulumi.local.yaml", API_KEYS)
    evaluations = [timed(lambda: evaluate(config, secret_keys, stack="local")) for _ in range(10)]
    toolchain = [str(REPO / "scripts" / "toolchain.sh"), "ensure"]
    ensure_s = timed(lambda: subprocess.run(toolchain, check=True, capture_output=True))
    versions = subprocess.run(
        [str(REPO / "scripts" / "toolchain.sh"), "versions"], capture_output=True, text=True
    )

    print(f"{'operation':<18}{'local stack':>14}{'empty program':>16}{'ratio':>8}")
    for label, tizi_s, base_s in rows:
        print(f"{label:<18}{tizi_s:>12.2f} s{base_s:>14.2f} s{tizi_s / base_s:>7.1f}x")
    median_ms = statistics.median(evaluations) * 1000
    print(f"program evaluation under mocks: median {median_ms:.0f} ms of 10 (goal < 1 s)")
    print(f"toolchain check (cached `scripts/toolchain.sh ensure`): {ensure_s:.2f} s (goal < 60 s)")
    print("pulumi:", shutil.which("pulumi"), "| docker provider:", shutil.which("pulumi-resource-docker"))
    print(versions.stdout.strip())
    up_s = rows[1][1]
    print(
        "goals met" if up_s < 20 and statistics.median(evaluations) < 1 and ensure_s < 60 else "GOALS NOT MET"
    )


if __name__ == "__main__":
    main()
