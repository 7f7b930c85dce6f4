"""Benchmark the Kubernetes target: `pulumi up` to Ready versus `helm install --wait`.

Same chart, same values (`tizi values stacks/Pulumi.kind.yaml`), same cluster, alternated
three times each so both see the same machine load; prints medians and the ratio (goal:
Pulumi within 1.2x of Helm).  Then the cluster's cached start time (stop, start, Ready;
goal under 60 s).  The cold build time of the cluster is in scripts/CLUSTER.md.

Pulumi runs in three settings, alternated with Helm: as tizi runs it (the Automation API
already passes `--skip-preview`), with `PULUMI_SKIP_CHECKPOINTS=true` (no state writes
during the update, one at the end), and with the provider's Kubernetes client allowed 200
queries per second and bursts of 400 (`PULUMI_K8S_CLIENT_QPS`/`_BURST`; its defaults are 50
and 100, provider/pkg/provider/provider.go). For each round the breakdown comes from the
engine's events as they arrive: engine start (until the first event), the Kubernetes
provider's start, namespace + quota + Secret, the Helm release, the time from the engine's
last event until the Automation API returns, and the wait for the rollout afterwards.

    eval "$(scripts/toolchain.sh env)"; eval "$(scripts/cluster.sh env)"
    .venv/bin/python bench/bench_cluster.py [--rounds 3] [--skip-restart]
"""

from __future__ import annotations

import argparse
import json
import os
import re
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from components.ops.engine import select_stack, up_or_clean  # noqa: E402
from components.targets.chart_values import CHART_DIR  # noqa: E402
from tests.engine_support import helm_prerequisites, project_copy  # noqa: E402

CONTEXT = os.environ.get("TIZI_KUBE_CONTEXT", "kind-tizi")
HELM_NS = "tizi-bench-helm"


def kubectl(*args: str, stdin: str | None = None, check: bool = True) -> subprocess.CompletedProcess:
    return subprocess.run(
        ["kubectl", "--context", CONTEXT, *args], input=stdin, text=True, capture_output=True, check=check
    )


def wait_rollout(namespace: str) -> None:
    kubectl("-n", namespace, "rollout", "status", "deployment/inference", "--timeout=300s")


def engine_seconds(output: str) -> float:
    """The engine's own `Duration:` line: the update itself, without the Automation API's
    extra CLI calls (stack select, config, outputs) around it."""
    match = re.search(r"Duration: (?:(\d+)m)?(\d+)s", output)
    return float(int(match.group(1) or 0) * 60 + int(match.group(2))) if match else float("nan")


STEPS = {
    "provider": ("pulumi:providers:kubernetes",),
    "namespace+quota+secret": ("kubernetes:core/v1:Namespace", "kubernetes:core/v1:ResourceQuota",
                               "kubernetes:core/v1:Secret"),
    "release": ("kubernetes:helm.sh/v3:Release",),
}  # fmt: skip


def pulumi_round(stack) -> tuple[float, float, dict[str, float]]:
    """Wall time to Ready, the engine's own duration, and the breakdown by step (seconds)."""
    lines: list[str] = []
    first_event: list[float] = []
    spans: dict[str, list[float]] = {}  # step -> [start, end]

    def on_event(event) -> None:
        now = time.perf_counter()
        first_event.append(now)
        for payload in (event.resource_pre_event, event.res_outputs_event):
            if payload is None:
                continue
            for step, types in STEPS.items():
                if payload.metadata.type in types:
                    span = spans.setdefault(step, [now, now])
                    span[0], span[1] = min(span[0], now), max(span[1], now)

    started = time.perf_counter()
    up_or_clean(stack, lines.append, on_event)
    updated = time.perf_counter()
    wait_rollout("tests-dev")
    elapsed = time.perf_counter() - started
    stack.destroy()
    breakdown = {"engine start": first_event[0] - started if first_event else float("nan")}
    breakdown |= {step: end - begin for step, (begin, end) in spans.items()}
    # after the engine's last event: the CLI exits and the Automation API's up returns (the
    # outputs and the summary come from the events: components/ops/reported_stack.py)
    breakdown["after the update's end"] = updated - first_event[-1] if first_event else float("nan")
    breakdown["rollout after up"] = elapsed - (updated - started)
    return elapsed, engine_seconds("".join(lines)), breakdown


def helm_round(values: Path) -> float:
    started = time.perf_counter()
    for document in helm_prerequisites(
        HELM_NS, "bench-key-0123456789abcdef"
    ):  # what the Pulumi component creates before the chart
        kubectl("apply", "-f", "-", stdin=json.dumps(document))
    subprocess.run(
        [
            "helm",
            "--kube-context",
            CONTEXT,
            "install",
            "inference",
            str(CHART_DIR),
            "-n",
            HELM_NS,
            "-f",
            str(values),
            "--wait",
            "--timeout",
            "300s",
        ],
        check=True,
        capture_output=True,
    )
    elapsed = time.perf_counter() - started
    subprocess.run(
        ["helm", "--kube-context", CONTEXT, "uninstall", "inference", "-n", HELM_NS, "--wait"],
        check=True,
        capture_output=True,
    )
    kubectl("delete", "namespace", HELM_NS, "--wait=true")
    return elapsed


def cluster_restart() -> float:
    script = str(REPO / "scripts" / "cluster.sh")
    subprocess.run([script, "stop"], check=True, capture_output=True)
    started = time.perf_counter()
    subprocess.run([script, "start"], check=True, capture_output=True)
    return time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--skip-restart", action="store_true", help="do not stop and start the cluster")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="tizi-bench-cluster-") as tmp:
        root = Path(tmp)
        values = root / "values.yaml"
        values.write_text(
            subprocess.run(
                [str(REPO / ".venv" / "bin" / "tizi"), "values", str(REPO / "stacks" / "Pulumi.kind.yaml")],
                check=True,
                capture_output=True,
                text=True,
            ).stdout
        )
        stack = select_stack("kind", project_copy(root / "project", ["kind"]), state_dir=root / "state")
        settings = {
            "as tizi runs it": {},
            "PULUMI_SKIP_CHECKPOINTS=true": {"PULUMI_SKIP_CHECKPOINTS": "true"},
            "client QPS 200, burst 400": {"PULUMI_K8S_CLIENT_QPS": "200", "PULUMI_K8S_CLIENT_BURST": "400"},
        }
        results: dict[str, list[tuple[float, float, dict[str, float]]]] = {name: [] for name in settings}
        helm_s = []
        for _ in range(args.rounds):
            for name, env in settings.items():
                stack.workspace.env_vars = {
                    **stack.workspace.env_vars,
                    "PULUMI_SKIP_CHECKPOINTS": "false",
                    "PULUMI_K8S_CLIENT_QPS": "",
                    "PULUMI_K8S_CLIENT_BURST": "",
                    **env,
                }
                results[name].append(pulumi_round(stack))
                helm_s.append(helm_round(values))
        stack.workspace.remove_stack("kind")
    h = statistics.median(helm_s)
    print(f"helm install --wait: {', '.join(f'{s:.1f}' for s in helm_s)} s, median {h:.1f} s")
    for name, rounds in results.items():
        walls = [wall for wall, _, _ in rounds]
        p = statistics.median(walls)
        print(f"pulumi up -> Ready, {name}: {', '.join(f'{s:.1f}' for s in walls)} s, median {p:.1f} s")
        engine = statistics.median(e for _, e, _ in rounds)
        print(f"  engine's own update: median {engine:.0f} s (whole seconds)")
        steps = sorted({step for _, _, b in rounds for step in b})
        for step in steps:
            median = statistics.median(b.get(step, float("nan")) for _, _, b in rounds)
            print(f"  {step:24} median {median:.2f} s")
        print(f"  ratio pulumi/helm: {p / h:.2f}x (goal <= 1.2x)")
    # Both sides wait with Helm's loop, which polls every 2 s: one round lands a whole step
    # later than another for the same pod, so a median of three flips between steps. Pooled:
    pooled = [r for rounds in results.values() for r in rounds]
    p = statistics.median(wall for wall, _, _ in pooled)
    own = statistics.median(wall - b.get("release", float("nan")) for wall, _, b in pooled)
    print(f"all {len(pooled)} pulumi rounds: median {p:.1f} s, ratio pulumi/helm {p / h:.2f}x (goal <= 1.2x)")
    print(f"  pulumi's own time (to Ready, minus the Helm release): median {own:.2f} s")
    if not args.skip_restart:
        start_s = cluster_restart()
        print(f"cluster start, cached (stop then start to a Ready node): {start_s:.1f} s (goal < 60 s)")


if __name__ == "__main__":
    main()
