"""Benchmark the LLM as tizi deploys it against the bare llama.cpp server on the same machine.

Targets, all serving SmolLM2-135M-Instruct Q4_1 from the same llama-cpp-python 0.3.36 wheel
with 1 generation thread, all up at the same time and measured in alternation:

- ``bare``: ``python -m llama_cpp.server`` on 127.0.0.1 from a venv made offline from the wheel
  cache (``~/.cache/tizi/venvs/llm-bare``, created when missing), the same settings as tizi's
  launcher (n_ctx 2048, 1 thread, ``logits_all`` off, no interruption of a running stream),
  ``OMP_WAIT_POLICY=PASSIVE``: the baseline. It reads a fresh copy of the cached model file, as
  both deployments read one (copied from the model image when deployed): on the 2-core VM the
  same bytes read through a file written long ago decoded ~15% slower (67 against 77 tokens/s,
  container and host alike), which would otherwise pass for a tizi speed-up
  (``--bare-model-from-cache`` shows it). ``--bare-cpus 0`` pins it like the edge's cpuset;
- ``edge``: the container ``pulumi up`` of the ``llm-local`` stack deploys on this machine's
  Docker engine (a copy of the project with its own state, ministry and port, as
  tests/engine/test_llm_stack.py does);
- ``kubernetes``: the pod of the ``llm-kind`` stack on the cluster, reached through
  ``kubectl port-forward svc/inference`` (as tests/cluster/test_llm_kind.py does);
- ``launcher`` (only when asked for): tizi's launcher (``python -m tizi_llm``) run on the host
  from the same venv, to separate what the gate costs from what the container costs.

Every request goes through the official ``openai`` client (one client per target, connection
kept alive), streaming, temperature 0, a fixed ``max_tokens``, the same prompts; the runs are
interleaved request by request with a rotating target order so all targets see the same
machine load. Figures: median decode rate (tokens/s between the first and the last streamed
token; one content chunk = one token with llama-cpp-python), median and p90 time to first
token, the ratio deployed/bare (goal >= 0.95), wall time from ``stack.up()`` to the first
streamed token, image sizes, RSS of the server process. Everything deployed is destroyed and
every process stopped at the end, also on failure, Ctrl-C or SIGTERM (a signal that arrives
during a `pulumi up` takes effect when that update ends, so no update is cut in half).

    eval "$(scripts/toolchain.sh env)"; eval "$(scripts/cluster.sh env)"
    .venv/bin/python bench/bench_llm.py [--runs 5] [--max-tokens 128]
        [--targets edge,kubernetes,bare[,launcher]] [--kube-cpu 1] [--bare-cpus 0]
        [--bare-model-from-cache] [--json]
"""

from __future__ import annotations

import argparse
import base64
import contextlib
import datetime
import functools
import json
import os
import platform
import secrets
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import openai
from pulumi import automation as auto

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from tests.conformance.contract import Target  # noqa: E402
from tests.engine_support import edit_stack, http_status, project_copy, wait_for  # noqa: E402

CACHE = Path(os.environ.get("TIZI_CACHE", Path.home() / ".cache" / "tizi"))
WHEELS = CACHE / "wheels"
MODELS = CACHE / "models"
MODEL_FILE = "SmolLM2-135M-Instruct.Q4_1.gguf"
BARE_VENV = CACHE / "venvs" / "llm-bare"
PYTHON = os.environ.get("TIZI_PYTHON", "/usr/bin/python3.11")  # the image's python (bookworm)
MODEL = "smollm2-135m-instruct"
IMAGES = ("tizi/llm-server:0.1.0", "tizi/model-smollm2:0.1.0")
CONTEXT = os.environ.get("TIZI_KUBE_CONTEXT", "kind-tizi")
MINISTRY = "llmbench"  # its own containers, volumes and namespace: nothing a test or `make up` uses
NAMESPACE = f"{MINISTRY}-dev"
EDGE_PORT = 28190
CGROUP_MEMORY_FILES = ("memory/memory.usage_in_bytes", "memory/memory.stat", "memory.current", "memory.stat")
ALL_TARGETS = ("edge", "kubernetes", "bare", "launcher")

#: everyday requests that make the model write a paragraph (English: the model's language)
PROMPTS = (
    "Explain step by step how to renew a national identity card at the town hall.",
    "Write a short letter asking the water company why my bill doubled this month.",
    "List the documents a family usually needs to enrol a child in primary school.",
    "Describe how to book an appointment with a doctor at a public hospital.",
)


# ----------------------------------------------------------------------------- measuring


@dataclass
class Sample:
    target: str
    prompt: int
    ttft_s: float
    tokens: int
    decode_tps: float
    total_s: float
    text: str = field(repr=False)


def stream_once(client: openai.OpenAI, prompt: str, max_tokens: int) -> tuple[float, int, float, float, str]:
    """(ttft, tokens, decode tokens/s, total, text) of one streamed chat completion."""
    started = time.perf_counter()
    stream = client.chat.completions.create(
        model=MODEL,
        messages=[{"role": "user", "content": prompt}],
        stream=True,
        temperature=0,
        max_tokens=max_tokens,
    )
    first: float | None = None
    last = 0.0
    parts: list[str] = []
    for chunk in stream:
        content = chunk.choices[0].delta.content if chunk.choices else None
        if content:
            last = time.perf_counter()
            first = last if first is None else first
            parts.append(content)
    total = time.perf_counter() - started
    if first is None:
        raise RuntimeError(f"no token streamed for {prompt!r}")
    decode = (len(parts) - 1) / (last - first) if len(parts) > 1 and last > first else float("nan")
    return first - started, len(parts), decode, total, "".join(parts)


def first_token_at(target: Target, started: float) -> float:
    """Seconds from ``started`` until the first streamed token of a fresh request."""
    stream = target.client(timeout=300).chat.completions.create(
        model=MODEL,
        messages=[{"role": "user", "content": PROMPTS[0]}],
        stream=True,
        temperature=0,
        max_tokens=8,
    )
    seen = None
    for chunk in stream:
        if seen is None and chunk.choices and chunk.choices[0].delta.content:
            seen = time.perf_counter() - started
    if seen is None:
        raise RuntimeError(f"{target.name}: no token streamed")
    return seen


def percentile(values: list[float], q: int) -> float:
    if len(values) < 2:
        return values[0] if values else float("nan")
    return statistics.quantiles(values, n=100, method="inclusive")[q - 1]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def vm_status(pid: int) -> dict[str, object]:
    """VmRSS and VmHWM of a host process, in kB."""
    out: dict[str, object] = {}
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        name, _, value = line.partition(":")
        if name in ("VmRSS", "VmHWM"):
            out[name] = int(value.split()[0])
    return out


def run(*args: str, check: bool = True) -> subprocess.CompletedProcess:
    return subprocess.run(list(args), check=check, capture_output=True, text=True)


def log(message: str) -> None:
    print(f"[bench_llm {time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


# ----------------------------------------------------------------------------- the bare server


def model_sha256() -> str:
    return (MODELS / f"{MODEL_FILE}.sha256").read_text().split()[0]


def ensure_bare_venv() -> Path:
    """A python3.11 venv with service/llm/requirements.txt, installed offline from the wheel cache."""
    python = BARE_VENV / "bin" / "python"
    probe = [str(python), "-c", "import llama_cpp.server.app"]
    if python.exists() and subprocess.run(probe, capture_output=True).returncode == 0:
        return python
    log(f"creating {BARE_VENV} offline from {WHEELS}")
    subprocess.run([PYTHON, "-m", "venv", "--clear", str(BARE_VENV)], check=True, capture_output=True)
    subprocess.run(
        [
            str(BARE_VENV / "bin" / "pip"),
            "install",
            "-q",
            "--disable-pip-version-check",
            "--no-index",
            "--no-deps",
            "--find-links",
            str(WHEELS),
            "-r",
            str(REPO / "service" / "llm" / "requirements.txt"),
        ],
        check=True,
    )
    subprocess.run(probe, check=True)
    return python


@dataclass
class HostServer:
    """A server process on 127.0.0.1: llama_cpp.server alone (``bare``) or tizi's launcher."""

    name: str
    target: Target
    process: subprocess.Popen
    started: float
    log_path: Path

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(15)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(5)


def start_host_server(
    root: Path,
    kind: str = "bare",
    port: int | None = None,
    cpus: str | None = None,
    model_dir: Path = MODELS,
) -> HostServer:
    """Start ``python -m llama_cpp.server`` (kind ``bare``) or ``python -m tizi_llm`` (``launcher``)
    on 127.0.0.1 with the model in ``model_dir`` (default: the cache), pinned to ``cpus`` (taskset
    list) when given; returns once it is started, not ready."""
    python = ensure_bare_venv()
    port = port or free_port()
    key = "tizi-bench-" + secrets.token_hex(16)
    work = root / kind
    work.mkdir(parents=True, exist_ok=True)
    env = {**os.environ, "OMP_WAIT_POLICY": "PASSIVE"}
    if kind == "bare":
        config = {
            "host": "127.0.0.1",
            "port": port,
            "api_key": key,
            "interrupt_requests": False,
            "models": [
                {
                    "model": str(model_dir / MODEL_FILE),
                    "model_alias": MODEL,
                    "n_ctx": 2048,
                    "n_threads": 1,
                    "n_threads_batch": 1,
                    "use_mmap": True,
                    "use_mlock": False,
                    "logits_all": False,
                    "verbose": False,
                }
            ],
        }
        (work / "config.json").write_text(json.dumps(config))
        command = [str(python), "-m", "llama_cpp.server", "--config_file", str(work / "config.json")]
    else:
        keys = work / "keys"
        keys.mkdir(exist_ok=True)
        (keys / "key-0").write_text(key)
        env.update(
            PYTHONPATH=f"{REPO / 'service' / 'llm'}:{REPO / 'service'}",
            TIZI_MODEL_DIR=str(model_dir),
            TIZI_MODEL_FILE=MODEL_FILE,
            TIZI_MODEL_SHA256=model_sha256(),
            TIZI_MODEL_NAME=MODEL,
            TIZI_THREADS="1",
            TIZI_CONTEXT_SIZE="2048",
            TIZI_HOST="127.0.0.1",
            PORT=str(port),
            TIZI_API_KEYS_DIR=str(keys),
            TIZI_DRAIN_SECONDS="1",
        )
        command = [str(python), "-m", "tizi_llm"]
    if cpus:
        command = ["taskset", "-c", cpus, *command]  # taskset execs: the pid stays the server's
    log_path = work / "server.log"
    started = time.perf_counter()
    with log_path.open("wb") as out:
        process = subprocess.Popen(command, env=env, stdout=out, stderr=subprocess.STDOUT, cwd=work)
    url = f"http://127.0.0.1:{port}"
    return HostServer(kind, Target(kind, url, key, MODEL, "llm"), process, started, log_path)


def wait_host_ready(server: HostServer, timeout: float = 120) -> None:
    def ready() -> bool:
        if server.process.poll() is not None:
            raise RuntimeError(f"{server.name} exited: {server.log_path.read_text()[-2000:]}")
        if server.name == "bare":  # llama_cpp.server listens only once the model is loaded
            return http_status(f"{server.target.base_url}/v1/models", server.target.key) == 200
        return http_status(f"{server.target.base_url}/readyz") == 200

    if not wait_for(ready, timeout=timeout, interval=0.05):
        raise RuntimeError(f"{server.name} not ready after {timeout} s")


@contextlib.contextmanager
def host_server(root: Path, kind: str = "bare") -> Iterator[HostServer]:
    server = start_host_server(root, kind)
    try:
        wait_host_ready(server)
        yield server
    finally:
        server.stop()


# ----------------------------------------------------------------------------- deployed targets


def destroy_stack(name: str, work_dir: Path, state_dir: Path, stack: auto.Stack) -> None:
    """Destroy and forget a stack, also after an interrupted `up`: its `pulumi up` may still be
    running (it holds the lock until it ends) or have died (`select_stack` clears its lock)."""
    from components.ops.engine import select_stack

    log(f"destroying {name}")
    deadline = time.monotonic() + 300
    while True:
        try:
            stack.destroy()
            break
        except auto.ConcurrentUpdateError:
            if time.monotonic() > deadline:
                raise
            log(f"an interrupted update of {name} still holds the lock: waiting for it to end")
            time.sleep(2)
            stack = select_stack(name, work_dir, state_dir=state_dir)
    stack.workspace.remove_stack(name)


_SIGNALS: dict[str, int | None] = {"deferring": 0, "pending": None}


def interrupted(signum: int, _frame: object) -> None:
    """The first SIGINT or SIGTERM unwinds like Ctrl-C so the clean-up runs, but not in the
    middle of a `pulumi up` (an inline program cut short leaves its update holding the lock
    and its provider plugin running); later signals are ignored so they cannot cut the
    clean-up short."""
    if _SIGNALS["pending"] is not None:
        return
    _SIGNALS["pending"] = signum
    if _SIGNALS["deferring"]:
        log(f"signal {signum}: stopping once the running `pulumi up` ends, then cleaning up")
        return
    log(f"signal {signum}: cleaning up (further signals are ignored)")
    raise KeyboardInterrupt


@contextlib.contextmanager
def signals_deferred() -> Iterator[None]:
    """Hold SIGINT/SIGTERM (see ``interrupted``) until the block ends, then act on them."""
    _SIGNALS["deferring"] = (_SIGNALS["deferring"] or 0) + 1
    try:
        yield
    finally:
        _SIGNALS["deferring"] = (_SIGNALS["deferring"] or 1) - 1
    if _SIGNALS["pending"] is not None:
        log("cleaning up (further signals are ignored)")
        raise KeyboardInterrupt


@dataclass
class Deployed:
    name: str
    target: Target
    up_s: float  # stack.up() alone
    ready_s: float  # start of up -> the server answers (readyz through the path the client uses)
    first_token_s: float  # start of up -> first streamed token
    rss: Callable[[], dict[str, object]]
    resources: dict[str, object]


def deploy_edge(root: Path, cleanup: contextlib.ExitStack) -> Deployed:
    from components.ops.engine import select_stack

    work_dir = project_copy(root / "edge-project", ["llm-local"])

    def change(config: dict) -> None:
        config["tizi:ministry"] = MINISTRY
        config["tizi:targets"][0]["hostPort"] = EDGE_PORT

    edit_stack(work_dir, "llm-local", change)
    stack = select_stack("llm-local", work_dir, state_dir=root / "edge-state")

    def destroy() -> None:
        destroy_stack("llm-local", work_dir, root / "edge-state", stack)

    cleanup.callback(destroy)
    log("pulumi up llm-local (edge)")
    started = time.perf_counter()
    with signals_deferred():
        result = stack.up()
    up_s = time.perf_counter() - started
    url = result.outputs["endpoints"].value["edge-llm"]
    key = next(k for k in stack.get_config("tizi:apiKeys").value.split(",") if k)
    target = Target("edge", url, key, MODEL, "llm")
    if not wait_for(lambda: http_status(f"{url}/readyz") == 200, timeout=120, interval=0.05):
        raise RuntimeError("the edge container never became ready")
    ready_s = time.perf_counter() - started
    first_s = first_token_at(target, started)
    [container] = run(
        "docker",
        "ps",
        "-q",
        "--filter",
        f"label=tizi.ma/ministry={MINISTRY}",
        "--filter",
        "label=org.tizi.component=edge",
    ).stdout.split()
    host_config = json.loads(run("docker", "inspect", container).stdout)[0]["HostConfig"]

    def rss() -> dict[str, object]:
        rows = run("docker", "top", container, "-eo", "pid,args").stdout.splitlines()[1:]
        pids = [int(r.split(None, 1)[0]) for r in rows if "tizi_llm" in r or "python" in r]
        stats = run("docker", "stats", "--no-stream", "--format", "{{.MemUsage}}", container).stdout.strip()
        return {**vm_status(pids[0]), "cgroup": stats.split(" / ")[0]}

    resources = {
        "cpuset": host_config.get("CpusetCpus"),
        "cpu_shares": host_config.get("CpuShares"),
        "memory_mb": (host_config.get("Memory") or 0) // (1 << 20),
    }
    return Deployed("edge", target, up_s, ready_s, first_s, rss, resources)


def kubectl(*args: str, check: bool = True) -> subprocess.CompletedProcess:
    return run("kubectl", "--context", CONTEXT, *args, check=check)


def deploy_kubernetes(root: Path, cleanup: contextlib.ExitStack, cpu: str | None) -> Deployed:
    from components.ops.engine import select_stack

    work_dir = project_copy(root / "kube-project", ["llm-kind"])

    def change(config: dict) -> None:
        config["tizi:ministry"] = MINISTRY
        config["tizi:targets"][0].update(context=CONTEXT, namespace=NAMESPACE)
        if cpu:
            config["tizi:resources"]["cpu"] = cpu

    edit_stack(work_dir, "llm-kind", change)
    stack = select_stack("llm-kind", work_dir, state_dir=root / "kube-state")

    def destroy() -> None:
        destroy_stack("llm-kind", work_dir, root / "kube-state", stack)

    cleanup.callback(destroy)
    log("pulumi up llm-kind (kubernetes)")
    started = time.perf_counter()
    with signals_deferred():
        stack.up()
    up_s = time.perf_counter() - started
    secret = json.loads(kubectl("-n", NAMESPACE, "get", "secret", "inference-api-keys", "-o", "json").stdout)
    key = base64.b64decode(sorted(secret["data"].items())[0][1]).decode()
    port = free_port()
    forward = subprocess.Popen(
        ["kubectl", "--context", CONTEXT, "-n", NAMESPACE, "port-forward", "svc/inference", f"{port}:80"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )

    def stop_forward() -> None:
        forward.terminate()
        try:
            forward.wait(10)
        except subprocess.TimeoutExpired:
            forward.kill()

    cleanup.callback(stop_forward)  # runs before the destroy (last in, first out)
    url = f"http://127.0.0.1:{port}"
    if not wait_for(lambda: http_status(f"{url}/readyz") == 200, timeout=180, interval=0.05):
        raise RuntimeError("the pod never answered through port-forward")
    ready_s = time.perf_counter() - started
    target = Target("kubernetes", url, key, MODEL, "llm")
    first_s = first_token_at(target, started)
    pod = json.loads(
        kubectl(
            "-n", NAMESPACE, "get", "pods", "-l", "app.kubernetes.io/instance=inference", "-o", "json"
        ).stdout
    )["items"][0]
    name = pod["metadata"]["name"]
    server = pod["spec"]["containers"][0]

    def rss() -> dict[str, object]:
        # the pod's memory cgroup, v1 or v2: usage minus inactive file pages, as `docker stats` shows
        files = ["/proc/1/status"] + [f"/sys/fs/cgroup/{f}" for f in CGROUP_MEMORY_FILES]
        shown = kubectl("-n", NAMESPACE, "exec", name, "-c", server["name"], "--", "cat", *files, check=False)
        values: dict[str, object] = {}
        usage = inactive = None
        for line in shown.stdout.splitlines():
            key_, _, value = line.partition(":")
            words = line.split()
            if key_ in ("VmRSS", "VmHWM"):
                values[key_] = int(value.split()[0])
            elif len(words) == 1 and words[0].isdigit():
                usage = int(words[0])
            elif len(words) == 2 and words[0] in ("total_inactive_file", "inactive_file"):
                inactive = int(words[1])
        if usage is not None:
            values["cgroup"] = f"{(usage - (inactive or 0)) / (1 << 20):.1f}MiB"
        return values

    return Deployed("kubernetes", target, up_s, ready_s, first_s, rss, dict(server.get("resources", {})))


# ----------------------------------------------------------------------------- the run


def image_sizes() -> dict[str, int]:
    return {
        image: int(run("docker", "image", "inspect", "--format", "{{.Size}}", image).stdout.strip())
        for image in IMAGES
    }


def dir_bytes(path: Path) -> int:
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file() and not p.is_symlink())


def measure(args: argparse.Namespace, root: Path, cleanup: contextlib.ExitStack) -> dict:
    report: dict = {
        "date": datetime.datetime.now().astimezone().isoformat(timespec="seconds"),
        "machine": {"cpus": os.cpu_count(), "loadavg_before": os.getloadavg(), "kernel": platform.release()},
        "settings": {
            "runs": args.runs,
            "max_tokens": args.max_tokens,
            "prompts": len(PROMPTS),
            "targets": args.targets,
            "kube_cpu": args.kube_cpu or "stack's own",
            "bare_cpus": args.bare_cpus or "any",
            "bare_model": "the cache's file" if args.bare_model_from_cache else "a fresh copy",
        },
    }
    targets: dict[str, Target] = {}
    rss: dict[str, Callable[[], dict[str, object]]] = {}
    startup: dict[str, dict[str, float]] = {}
    resources: dict[str, object] = {}
    model_dir = MODELS
    if not args.bare_model_from_cache and {"bare", "launcher"} & set(args.targets):
        # a fresh copy, as both deployments have one (copied from the model image at deploy time):
        # the same bytes read through a file written long ago measured ~15% slower here
        model_dir = root / "model"
        model_dir.mkdir()
        shutil.copyfile(MODELS / MODEL_FILE, model_dir / MODEL_FILE)
    for kind in ("bare", "launcher"):
        if kind in args.targets:
            log(f"starting the {kind} server")
            server = start_host_server(root, kind, cpus=args.bare_cpus, model_dir=model_dir)
            cleanup.callback(server.stop)
            wait_host_ready(server)
            ready_s = time.perf_counter() - server.started
            first_s = first_token_at(server.target, server.started)
            targets[kind] = server.target
            rss[kind] = functools.partial(vm_status, server.process.pid)
            startup[kind] = {"ready_s": ready_s, "first_token_s": first_s}
    for kind in ("edge", "kubernetes"):
        if kind in args.targets:
            if kind == "edge":
                deployed = deploy_edge(root, cleanup)
            else:
                deployed = deploy_kubernetes(root, cleanup, args.kube_cpu)
            targets[kind] = deployed.target
            rss[kind] = deployed.rss
            resources[kind] = deployed.resources
            startup[kind] = {
                "up_s": deployed.up_s,
                "ready_s": deployed.ready_s,
                "first_token_s": deployed.first_token_s,
            }
    rss_start = {name: fn() for name, fn in rss.items()}
    names = [t for t in ALL_TARGETS if t in targets]
    clients = {name: targets[name].client(timeout=300) for name in names}

    log("round trips (models.list) and warm-up")
    round_trip: dict[str, list[float]] = {name: [] for name in names}
    for _ in range(20):
        for name in names:
            t0 = time.perf_counter()
            clients[name].models.list()
            round_trip[name].append(time.perf_counter() - t0)
    for name in names:
        for prompt in PROMPTS:
            stream_once(clients[name], prompt, args.max_tokens)

    samples: list[Sample] = []
    plain: dict[str, list[float]] = {name: [] for name in names}
    total = args.runs * len(PROMPTS) * len(names)
    for run_index in range(args.runs):
        order = names[run_index % len(names) :] + names[: run_index % len(names)]
        for prompt_index, prompt in enumerate(PROMPTS):
            for name in order:
                ttft, tokens, decode, elapsed, text = stream_once(clients[name], prompt, args.max_tokens)
                samples.append(Sample(name, prompt_index, ttft, tokens, decode, elapsed, text))
        for name in order:  # one plain (non-streaming) request per run: the whole answer at once
            t0 = time.perf_counter()
            clients[name].chat.completions.create(
                model=MODEL,
                messages=[{"role": "user", "content": PROMPTS[run_index % len(PROMPTS)]}],
                temperature=0,
                max_tokens=args.max_tokens,
            )
            plain[name].append(time.perf_counter() - t0)
        log(f"run {run_index + 1}/{args.runs} done ({len(samples)}/{total} requests)")
    rss_end = {name: fn() for name, fn in rss.items()}
    report["machine"]["loadavg_after"] = os.getloadavg()

    per_target: dict[str, dict[str, Any]] = {}
    for name in names:
        mine = [s for s in samples if s.target == name]
        rates = [s.decode_tps for s in mine]
        ttfts = [s.ttft_s for s in mine]
        per_target[name] = {
            "requests": len(mine),
            "tokens_per_request": statistics.median(s.tokens for s in mine),
            "decode_tps_median": statistics.median(rates),
            "decode_tps_p10": percentile(rates, 10),
            "decode_tps_p90": percentile(rates, 90),
            "ttft_s_median": statistics.median(ttfts),
            "ttft_s_p90": percentile(ttfts, 90),
            "end_to_end_tps_median": statistics.median(s.tokens / s.total_s for s in mine),
            "models_list_ms_median": statistics.median(round_trip[name]) * 1000,
            "plain_request_s_median": statistics.median(plain[name]),
            "rss_kb_after_first_token": rss_start[name],
            "rss_kb_after_runs": rss_end[name],
            **({"startup": startup[name]} if name in startup else {}),
            **({"resources": resources[name]} if name in resources else {}),
        }
    if "bare" in per_target:
        bare = per_target["bare"]
        for name in names:
            if name != "bare":
                entry = per_target[name]
                entry["ratio_decode_tps_vs_bare"] = entry["decode_tps_median"] / bare["decode_tps_median"]
                entry["ratio_ttft_vs_bare"] = entry["ttft_s_median"] / bare["ttft_s_median"]
    texts: dict[int, set[str]] = {}
    for s in samples:
        texts.setdefault(s.prompt, set()).add(s.text)
    report["identical_outputs"] = all(len(v) == 1 for v in texts.values())
    report["targets"] = per_target
    report["images"] = image_sizes()
    if BARE_VENV.exists():
        report["bare_venv_bytes"] = dir_bytes(BARE_VENV)
    return report


def print_report(report: dict) -> None:
    targets = report["targets"]
    names = list(targets)
    s = report["settings"]
    print(
        f"SmolLM2-135M-Instruct Q4_1, llama-cpp-python 0.3.36, 1 thread; {s['runs']} runs x "
        f"{s['prompts']} prompts per target, interleaved, max_tokens {s['max_tokens']}, temperature 0"
    )
    print(
        f"bare/launcher: cpus {s['bare_cpus']}, model file {s['bare_model']}; kubernetes cpu: {s['kube_cpu']}"
    )
    print(
        f"machine: {report['machine']['cpus']} cpus, load average before "
        f"{report['machine']['loadavg_before'][0]:.2f}, after {report['machine']['loadavg_after'][0]:.2f}"
    )
    width = 14
    print(f"{'':<34}" + "".join(f"{n:>{width}}" for n in names))

    def row(label: str, fn: Callable[[dict], str]) -> None:
        print(f"{label:<34}" + "".join(f"{fn(targets[n]):>{width}}" for n in names))

    def opt(value: object, fmt: str) -> str:
        return format(value, fmt) if isinstance(value, (int, float)) else "-"

    row("decode tokens/s, median", lambda t: f"{t['decode_tps_median']:.1f}")
    row("decode tokens/s, p10 .. p90", lambda t: f"{t['decode_tps_p10']:.0f}..{t['decode_tps_p90']:.0f}")
    row("ratio tokens/s vs bare (>= 0.95)", lambda t: opt(t.get("ratio_decode_tps_vs_bare"), ".3f"))
    row("time to first token, median ms", lambda t: f"{t['ttft_s_median'] * 1000:.0f}")
    row("time to first token, p90 ms", lambda t: f"{t['ttft_s_p90'] * 1000:.0f}")
    row("ratio TTFT vs bare", lambda t: opt(t.get("ratio_ttft_vs_bare"), ".2f"))
    row("end-to-end tokens/s, median", lambda t: f"{t['end_to_end_tps_median']:.1f}")
    row("tokens per request, median", lambda t: f"{t['tokens_per_request']:.0f}")
    row("plain (non-stream) request, s", lambda t: f"{t['plain_request_s_median']:.2f}")
    row("models.list round trip, ms", lambda t: f"{t['models_list_ms_median']:.1f}")
    row("stack.up(), s", lambda t: opt(t.get("startup", {}).get("up_s"), ".1f"))
    row("start -> ready, s", lambda t: opt(t.get("startup", {}).get("ready_s"), ".1f"))
    row("start -> first token, s", lambda t: opt(t.get("startup", {}).get("first_token_s"), ".1f"))
    row(
        "RSS after first token, MB",
        lambda t: opt(t["rss_kb_after_first_token"].get("VmRSS", 0) / 1000, ".0f"),
    )
    row("RSS after the runs, MB", lambda t: opt(t["rss_kb_after_runs"].get("VmRSS", 0) / 1000, ".0f"))
    row("peak RSS (VmHWM), MB", lambda t: opt(t["rss_kb_after_runs"].get("VmHWM", 0) / 1000, ".0f"))
    row("cgroup memory in use", lambda t: str(t["rss_kb_after_runs"].get("cgroup", "-")))
    print(
        "start = stack.up() for edge and kubernetes (ready via port-forward for kubernetes), "
        "process spawn for bare/launcher"
    )
    for name, resources in ((n, t["resources"]) for n, t in targets.items() if "resources" in t):
        print(f"{name} resources: {json.dumps(resources, sort_keys=True)}")
    for image, size in report["images"].items():
        print(f"image {image}: {size / 1e6:.1f} MB ({size} B)")
    if "bare_venv_bytes" in report:
        print(f"bare venv on disk ({BARE_VENV}): {report['bare_venv_bytes'] / 1e6:.1f} MB")
    print("same text from every target for every prompt:", "yes" if report["identical_outputs"] else "NO")
    ratios = [t["ratio_decode_tps_vs_bare"] for t in targets.values() if "ratio_decode_tps_vs_bare" in t]
    if ratios:
        print("goal met (tokens/s >= 0.95 x bare)" if min(ratios) >= 0.95 else "GOAL NOT MET (< 0.95 x bare)")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=5, help="rounds over every prompt and target (default 5)")
    parser.add_argument("--max-tokens", type=int, default=128)
    parser.add_argument(
        "--targets", default="edge,kubernetes,bare", help=f"comma-separated, of {','.join(ALL_TARGETS)}"
    )
    parser.add_argument(
        "--kube-cpu",
        default=None,
        help="override the llm-kind stack's tizi:resources.cpu (request = limit), e.g. 1",
    )
    parser.add_argument(
        "--bare-cpus",
        default=None,
        help="pin the bare and launcher processes to these CPUs (taskset list), e.g. 0 as the edge's cpuset",
    )
    parser.add_argument(
        "--bare-model-from-cache",
        action="store_true",
        help="bare and launcher read the model file of the cache itself, not a fresh copy of it",
    )
    parser.add_argument("--json", action="store_true", help="print the figures as JSON")
    args = parser.parse_args()
    args.targets = [t.strip() for t in args.targets.split(",") if t.strip()]
    unknown = set(args.targets) - set(ALL_TARGETS)
    if unknown or not args.targets:
        parser.error(f"unknown targets {sorted(unknown)}; choose from {','.join(ALL_TARGETS)}")
    if args.runs < 1 or args.max_tokens < 2:
        parser.error("--runs >= 1 and --max-tokens >= 2")
    for image in IMAGES:
        if {"edge", "kubernetes"} & set(args.targets) and run(
            "docker", "image", "inspect", image, check=False
        ).returncode:
            parser.error(f"{image} missing: scripts/build-llm-image.sh and scripts/build-model-image.sh")
    signal.signal(signal.SIGINT, interrupted)
    signal.signal(signal.SIGTERM, interrupted)
    with tempfile.TemporaryDirectory(prefix="tizi-bench-llm-") as tmp, contextlib.ExitStack() as cleanup:
        report = measure(args, Path(tmp), cleanup)
    if args.json:
        print(json.dumps(report, indent=2, default=str))
    else:
        print_report(report)
    return 0


if __name__ == "__main__":
    sys.exit(main())
