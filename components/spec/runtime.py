"""Runtime presets: what a model server needs, computed from a few lines of stack settings.

``tizi:service.runtime`` names a preset (``llama-cpp``, ``vllm``, ``tizi-langid``,
``custom``), as a string or as a mapping with the preset's own settings.  A preset
computes the image default, command and arguments, environment, health paths, the time
a model may take to load (the startup budget every target turns into probes) and the
resource defaults, so a ministry team writes the model and the preset, not a server's
flags.  ``custom`` takes any image, command, port and health paths as written.

Weights are an artifact, not part of the server image: ``llama-cpp`` names the model
file and its sha256, which the server checks before it starts (one image serves several
models).  ``vllm`` is rendered and validated only: no GPU is available to test it here.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

from components.spec.reader import SettingsReader

#: The reference image (tizi's own langid server), built by scripts/build-image.sh.
REFERENCE_IMAGE = "tizi/inference-service:0.1.0"
#: The llama.cpp server image (scripts/build-llm-image.sh), built with no registry.
LLM_IMAGE = "tizi/llm-server:0.1.0"
#: Where every target mounts the model files (the edge model volume, the pod's model volume).
MODEL_DIR = "/var/cache/tizi/models"
#: Where a model image (``oci:`` model source) carries its weights.
MODEL_IMAGE_DIR = "/model"
_GGUF = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,120}\.gguf")
_SHA256 = re.compile(r"[a-f0-9]{64}")


class Preset(StrEnum):
    """The model servers tizi knows how to run."""

    TIZI_LANGID = "tizi-langid"
    LLAMA_CPP = "llama-cpp"
    VLLM = "vllm"
    CUSTOM = "custom"


@dataclass(frozen=True)
class Runtime:
    """What the preset decided; fields a preset leaves to the stack stay empty."""

    preset: Preset
    #: the image when ``tizi:service.image`` is not set; empty: the stack must set one
    default_image: str
    command: tuple[str, ...] = ()
    args: tuple[str, ...] = ()
    env: Mapping[str, str] = field(default_factory=dict)
    #: health paths (startup, liveness, readiness); empty: the stack's own or the defaults
    health: tuple[str, str, str] | None = None
    #: seconds a fresh replica may take before it must answer its startup probe
    startup_seconds: int = 60
    cpu: str = "500m"
    memory: str = "512Mi"
    model_file: str = ""
    model_sha256: str = ""
    gpu_required: int = 0


#: tizi's own langid server, the runtime of stacks that name none
DEFAULT_RUNTIME = Runtime(Preset.TIZI_LANGID, default_image=REFERENCE_IMAGE)

PRESET_KEYS: Mapping[Preset, tuple[str, ...]] = {
    Preset.TIZI_LANGID: ("preset",),
    Preset.LLAMA_CPP: ("preset", "threads", "contextSize", "modelFile", "modelSha256"),
    Preset.VLLM: ("preset", "tensorParallelSize", "gpuMemoryUtilization", "maxModelLen"),
    Preset.CUSTOM: ("preset",),
}


def _load_seconds(model_mib: int, seconds_per_gib: int) -> int:
    """Startup budget: a minute to start, then time to read the weights (slow disks included)."""
    return 60 + math.ceil(model_mib / 1024 * seconds_per_gib)


def read_runtime(r: SettingsReader, raw: Any, model_name: str, model_mib: int, port: int) -> Runtime:
    """The runtime of ``tizi:service.runtime`` (default ``tizi-langid``), problems recorded in ``r``."""
    settings: Mapping[str, Any]
    if raw is None or isinstance(raw, str):
        settings = {"preset": raw or Preset.TIZI_LANGID.value}
    elif isinstance(raw, Mapping):
        settings = raw
    else:
        r.fail(
            "service.runtime", raw, f"must be a preset name ({', '.join(Preset)}) or a mapping with preset:"
        )
        return Runtime(Preset.TIZI_LANGID, default_image="")
    name = r.choice("service.runtime.preset", settings.get("preset"), tuple(p.value for p in Preset))
    if not name:
        return Runtime(Preset.TIZI_LANGID, default_image="")
    preset = Preset(name)
    if isinstance(raw, Mapping):
        r.unknown("service.runtime", settings, PRESET_KEYS[preset])
    if preset is Preset.LLAMA_CPP:
        return _llama_cpp(r, settings, model_name, model_mib, port)
    if preset is Preset.VLLM:
        return _vllm(r, settings, model_name, model_mib, port)
    if preset is Preset.CUSTOM:
        return Runtime(preset, default_image="", startup_seconds=_load_seconds(model_mib, 60))
    return Runtime(preset, default_image=REFERENCE_IMAGE, startup_seconds=_load_seconds(model_mib, 30))


def _llama_cpp(
    r: SettingsReader, s: Mapping[str, Any], model_name: str, model_mib: int, port: int
) -> Runtime:
    key = "service.runtime"
    threads = r.integer(f"{key}.threads", s.get("threads"), 1, 64, default=1)
    context = r.integer(f"{key}.contextSize", s.get("contextSize"), 256, 131072, default=2048)
    model_file = r.string(
        f"{key}.modelFile",
        s.get("modelFile"),
        _GGUF,
        "must name the model's GGUF file (e.g. model.Q4_1.gguf)",
    )
    sha = r.string(
        f"{key}.modelSha256", s.get("modelSha256"), _SHA256,
        "must be the sha256 of the model file (64 lowercase hex): the server refuses other weights",
    )  # fmt: skip
    # weights in memory, the context's KV cache, and the server itself
    memory_mib = 256 + model_mib + max(64, context // 8)
    return Runtime(
        Preset.LLAMA_CPP,
        default_image=LLM_IMAGE,
        env={
            "TIZI_MODEL_DIR": MODEL_DIR,
            "TIZI_MODEL_FILE": model_file,
            "TIZI_MODEL_SHA256": sha,
            "TIZI_MODEL_NAME": model_name,
            "TIZI_THREADS": str(threads),
            "TIZI_CONTEXT_SIZE": str(context),
            # llama.cpp's OpenMP threads spin while idle; on shared cores that starves neighbours
            "OMP_WAIT_POLICY": "PASSIVE",
        },
        health=("/healthz", "/healthz", "/readyz"),
        startup_seconds=_load_seconds(model_mib, 60),
        cpu=str(threads),
        memory=f"{math.ceil(memory_mib / 64) * 64}Mi",
        model_file=model_file,
        model_sha256=sha,
    )


def _vllm(r: SettingsReader, s: Mapping[str, Any], model_name: str, model_mib: int, port: int) -> Runtime:
    key = "service.runtime"
    tensor_parallel = r.integer(f"{key}.tensorParallelSize", s.get("tensorParallelSize"), 1, 8, default=1)
    utilisation = s.get("gpuMemoryUtilization", 0.9)
    if (
        isinstance(utilisation, bool)
        or not isinstance(utilisation, int | float)
        or not 0.1 <= utilisation <= 0.99
    ):
        r.fail(f"{key}.gpuMemoryUtilization", utilisation, "must be a number between 0.1 and 0.99")
        utilisation = 0.9
    args = [
        "--model", f"{MODEL_DIR}/{model_name}", "--served-model-name", model_name,
        "--port", str(port), "--tensor-parallel-size", str(tensor_parallel),
        "--gpu-memory-utilization", f"{utilisation:g}",
    ]  # fmt: skip
    if s.get("maxModelLen") is not None:
        args += ["--max-model-len", str(r.integer(f"{key}.maxModelLen", s.get("maxModelLen"), 256, 1048576))]
    return Runtime(
        Preset.VLLM,
        default_image="",
        args=tuple(args),
        health=("/health", "/health", "/health"),
        # vLLM loads the weights onto the GPUs and compiles kernels: minutes for a large model
        startup_seconds=_load_seconds(model_mib, 120) + 120,
        cpu="4",
        memory=f"{max(8, math.ceil(model_mib * 1.2 / 1024))}Gi",
        gpu_required=tensor_parallel,
    )
