"""Runtime presets: a few lines of stack settings become the server's command, env, probes
and resources; bad preset settings fail like every other setting."""

from __future__ import annotations

from typing import Any

import pytest

from components.problems import StackError
from components.spec.runtime import LLM_IMAGE, REFERENCE_IMAGE, Preset
from components.targets.chart_values import chart_values

from .settings import with_value
from .test_spec_validation import ENCRYPTED, validate_settings

SHA = "a" * 64
LLAMA = {"preset": "llama-cpp", "modelFile": "SmolLM2-135M-Instruct.Q4_1.gguf", "modelSha256": SHA}


def spec_with(**service: Any):
    settings = with_value("service", {"name": "inference", "secrets": ["apiKeys"], **service})
    return validate_settings(settings, ENCRYPTED).spec


def problems_with(settings: dict[str, Any]) -> list[str]:
    with pytest.raises(StackError) as raised:
        validate_settings(settings, ENCRYPTED)
    return [str(p) for p in raised.value.problems]


def test_no_runtime_is_the_reference_server() -> None:
    spec = spec_with(image=REFERENCE_IMAGE)
    assert spec.runtime.preset is Preset.TIZI_LANGID
    assert spec.image == REFERENCE_IMAGE and spec.command == () and spec.args == ()


def test_the_reference_server_needs_no_image_line() -> None:
    assert spec_with(runtime="tizi-langid").image == REFERENCE_IMAGE


def test_llama_cpp_preset_computes_image_env_probes_and_resources() -> None:
    settings = with_value("service", {"name": "inference", "secrets": ["apiKeys"], "runtime": LLAMA})
    settings["model"]["size"] = "100Mi"
    settings.pop("resources")
    spec = validate_settings(settings, ENCRYPTED).spec
    assert spec.image == LLM_IMAGE
    env = spec.container_env
    assert env["TIZI_MODEL_FILE"] == "SmolLM2-135M-Instruct.Q4_1.gguf" and env["TIZI_MODEL_SHA256"] == SHA
    assert env["TIZI_THREADS"] == "1" and env["OMP_WAIT_POLICY"] == "PASSIVE"
    assert env["TIZI_CONTEXT_SIZE"] == "2048" and env["TIZI_MODEL_NAME"] == spec.model.name
    assert (spec.health.startup, spec.health.readiness) == ("/healthz", "/readyz")
    assert spec.resources.cpu == "1" and spec.resources.memory == "640Mi"
    assert spec.health.startup_seconds == 66, "a minute, then 60 s per GiB of weights"


def test_a_larger_model_gets_a_longer_startup_budget_on_every_target() -> None:
    settings = with_value("service", {"name": "inference", "secrets": ["apiKeys"], "runtime": LLAMA})
    settings["model"]["size"] = "8Gi"
    settings["resources"] = {"cpu": "2", "memory": "10Gi"}
    spec = validate_settings(settings, ENCRYPTED).spec
    assert spec.health.startup_seconds == 60 + 8 * 60
    values = chart_values(spec, spec.targets[0])
    startup = values["probes"]["startup"]
    assert startup["periodSeconds"] * startup["failureThreshold"] >= spec.health.startup_seconds


def test_stack_resources_win_over_the_preset_defaults() -> None:
    settings = with_value("service", {"name": "inference", "secrets": ["apiKeys"], "runtime": LLAMA})
    settings["resources"] = {"cpu": "2", "memory": "2Gi"}
    spec = validate_settings(settings, ENCRYPTED).spec
    assert (spec.resources.cpu, spec.resources.memory) == ("2", "2Gi")


def test_vllm_preset_renders_its_arguments_and_needs_gpus() -> None:
    settings = with_value(
        "service",
        {"name": "inference", "secrets": ["apiKeys"], "image": "vllm/vllm-openai:v0.9.0",
         "runtime": {"preset": "vllm", "tensorParallelSize": 2, "gpuMemoryUtilization": 0.85}},
    )  # fmt: skip
    settings["resources"] = {"cpu": "8", "memory": "32Gi", "gpu": {"count": 2, "type": "nvidia-l4"}}
    settings["targets"] = [settings["targets"][0]]  # GPUs: no edge site
    spec = validate_settings(settings, ENCRYPTED).spec
    args = list(spec.args)
    assert args[args.index("--tensor-parallel-size") + 1] == "2"
    assert args[args.index("--gpu-memory-utilization") + 1] == "0.85"
    assert args[args.index("--served-model-name") + 1] == spec.model.name
    assert spec.health.readiness == "/health"
    assert spec.health.startup_seconds > 120


BAD_PRESETS = [
    ({"preset": "ollama"}, "service.runtime.preset", "must be one of"),
    (42, "service.runtime", "preset name"),
    ({**LLAMA, "threads": 0}, "service.runtime.threads", "between 1 and 64"),
    ({**LLAMA, "threads": "4"}, "service.runtime.threads", "integer"),
    ({**LLAMA, "contextSize": 10}, "service.runtime.contextSize", "between 256"),
    ({**LLAMA, "modelFile": "../../etc/passwd"}, "service.runtime.modelFile", "GGUF"),
    ({**LLAMA, "modelFile": "model.bin"}, "service.runtime.modelFile", "GGUF"),
    ({**LLAMA, "modelSha256": "abc"}, "service.runtime.modelSha256", "64 lowercase hex"),
    ({**LLAMA, "modelSha256": SHA + "\n"}, "service.runtime.modelSha256", "64 lowercase hex"),
    ({"preset": "llama-cpp"}, "service.runtime.modelFile", "GGUF"),
    ({**LLAMA, "tensorParallelSize": 2}, "service.runtime.tensorParallelSize", "unknown key"),
    ({"preset": "vllm", "gpuMemoryUtilization": 1.5}, "service.runtime.gpuMemoryUtilization", "0.1 and 0.99"),
    ({"preset": "vllm"}, "resources.gpu.count", "needs at least 1 GPU"),
    ({"preset": "vllm"}, "service.image", "has no default image"),
    ({"preset": "custom"}, "service.image", "has no default image"),
]


@pytest.mark.parametrize(
    ("runtime", "key", "words"), BAD_PRESETS, ids=[f"{c[1]}:{c[2]}"[:50] for c in BAD_PRESETS]
)
def test_bad_preset_settings_fail_at_preview(runtime: Any, key: str, words: str) -> None:
    settings = with_value("service", {"name": "inference", "secrets": ["apiKeys"], "runtime": runtime})
    lines = problems_with(settings)
    assert any(line.startswith(f"tizi:{key}: ") and words in line for line in lines), lines


def test_only_the_custom_runtime_takes_a_command() -> None:
    settings = with_value(
        "service",
        {"name": "inference", "secrets": ["apiKeys"], "runtime": LLAMA, "command": ["sh", "-c", "x"]},
    )
    assert any("use runtime: custom" in line for line in problems_with(settings))
    spec = spec_with(runtime="custom", image="ghcr.io/ggml-org/llama.cpp:server", command=["/llama-server"],
                     args=["--port", "8080"], health={"startup": "/health", "liveness": "/health",
                                                      "readiness": "/health"})  # fmt: skip
    assert spec.command == ("/llama-server",) and spec.health.readiness == "/health"
