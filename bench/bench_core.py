"""Benchmark the core kit: render 100 ministry stacks, check them, evaluate the program.

Prints totals and the median per stack, each beside a baseline measured in the same
run (plain YAML parsing of the same files for the check; an empty Pulumi program under
the same mocks for the evaluation), so the ratios hold on a noisy 2-core machine.
Goals (issue 3): all 100 checks under 30 s; evaluation under 0.5 s median per stack.

    .venv/bin/python bench/bench_core.py [--stacks 100]
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import yaml

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from tests.unit.pulumi_harness import evaluate, stack_config  # noqa: E402
from tests.unit.settings import API_KEYS  # noqa: E402

REGIONS = {
    "public": ["eu-paris", "ma-casablanca-oci"],
    "personal": ["ma-casablanca-oci", "ma-benguerir"],
    "sensitive": ["ma-benguerir", "ma-temara-medasys"],
    "vital-l2": ["ma-casablanca-nplusone"],
    "vital-l1": ["ma-temara-medasys"],
}


def render_stacks(count: int, folder: Path) -> float:
    """Render ``count`` stacks with ``tizi stack new`` (one process each, as a user would)."""
    tizi = str(Path(sys.executable).parent / "tizi")
    classes = sorted(REGIONS)
    started = time.perf_counter()
    for index in range(count):
        data_class = classes[index % len(classes)]
        region = REGIONS[data_class][index % len(REGIONS[data_class])]
        targets = ["--target", "kubernetes", "--target", "edge", "--edge-site", f"ma-edge-site{index}"]
        subprocess.run(
            [tizi, "stack", "new", "--ministry", f"ministry{index:03d}", "--env", "prod",
             "--data-class", data_class, "--region", region, *targets, "--stacks-dir", str(folder)],
            check=True, capture_output=True,
        )  # fmt: skip
    return time.perf_counter() - started


def add_secret(files: list[Path]) -> None:
    """Mark each rendered stack as holding its encrypted keys, as `pulumi config set --secret` would."""
    for path in files:
        with path.open("a", encoding="utf-8") as handle:
            handle.write("  tizi:apiKeys:\n    secure: v1:bench:placeholder\n")


def time_check(files: list[Path]) -> float:
    tizi = str(Path(sys.executable).parent / "tizi")
    started = time.perf_counter()
    result = subprocess.run([tizi, "check", *map(str, files)], capture_output=True, text=True)
    elapsed = time.perf_counter() - started
    if result.returncode != 0:
        raise SystemExit(f"tizi check failed:\n{result.stdout[-2000:]}")
    return elapsed


def time_yaml_baseline(files: list[Path]) -> float:
    started = time.perf_counter()
    script = "import sys, yaml\nfor f in sys.argv[1:]: yaml.safe_load(open(f))"
    subprocess.run([sys.executable, "-c", script, *map(str, files)], check=True)
    return time.perf_counter() - started


def time_evaluations(files: list[Path]) -> list[float]:
    durations = []
    for path in files:
        config, secret_keys = stack_config(path, API_KEYS)
        started = time.perf_counter()
        evaluate(config, secret_keys, stack=path.stem)
        durations.append(time.perf_counter() - started)
    return durations


def time_empty_program(count: int) -> list[float]:
    """The baseline: the same mocks running a program that registers nothing."""
    import pulumi

    from tests.unit.pulumi_harness import Evaluation, RecordingMocks

    durations = []
    for _ in range(count):
        mocks = RecordingMocks(Evaluation())
        pulumi.runtime.set_mocks(mocks, project="tizi", stack="baseline", preview=False)
        started = time.perf_counter()

        @pulumi.runtime.test
        def empty():
            pulumi.export("nothing", None)

        empty()
        durations.append(time.perf_counter() - started)
    return durations


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--stacks", type=int, default=100)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="tizi-bench-") as tmp:
        folder = Path(tmp)
        render_s = render_stacks(args.stacks, folder)
        files = sorted(folder.glob("Pulumi.*.yaml"))
        add_secret(files)
        assert all(yaml.safe_load(f.read_text())["config"]["tizi:ministry"] for f in files)
        check_s = time_check(files)
        yaml_s = time_yaml_baseline(files)
        evals = time_evaluations(files)
        empties = time_empty_program(len(files))
    eval_median, empty_median = statistics.median(evals), statistics.median(empties)
    print(f"machine: {os.cpu_count()} cores, python {sys.version.split()[0]}")
    print(
        f"stacks rendered with `tizi stack new`:   {len(files)} in {render_s:.2f} s "
        f"({render_s / len(files) * 1000:.0f} ms each, one process per stack)"
    )
    print(
        f"`tizi check` of all {len(files)} stacks:       {check_s:.2f} s total "
        f"(goal < 30 s) | baseline YAML parse {yaml_s:.2f} s | ratio {check_s / yaml_s:.1f}x"
    )
    print(
        f"program evaluation under mocks:        median {eval_median * 1000:.1f} ms, "
        f"p90 {statistics.quantiles(evals, n=10)[-1] * 1000:.1f} ms, total {sum(evals):.2f} s "
        f"(goal median < 500 ms)"
    )
    print(
        f"baseline empty program under mocks:    median {empty_median * 1000:.1f} ms | "
        f"ratio {eval_median / empty_median:.1f}x"
    )
    ok = check_s < 30 and eval_median < 0.5
    print("goals met" if ok else "GOALS NOT MET")


if __name__ == "__main__":
    main()
