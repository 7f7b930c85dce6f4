"""The edge gateway as the program registers it: one long-lived gateway per site target,
a publisher per configuration, keys only inside Pulumi's secret wrapper."""

from __future__ import annotations

import json

from .pulumi_harness import is_secret, unwrap
from .test_program import KEYS, run_stack


def test_gateway_publishes_the_site_port_and_metrics_on_loopback_only():
    evaluation = run_stack("local")
    gateway = evaluation.named("edge-local-gateway").inputs
    assert gateway["name"] == "tizi-local-dev-edge-local-gateway", "a stable name: rolls never replace it"
    assert gateway["networkMode"] == "tizi-local-dev-edge-local-net"
    ports = {p["internal"]: p for p in unwrap(gateway["ports"])}
    assert ports[8443]["external"] == 18080 and ports[8443]["ip"] == "127.0.0.1"
    assert ports[9095]["external"] == 19080 and ports[9095]["ip"] == "127.0.0.1"
    assert gateway["readOnly"] is True and gateway["user"] == "10001:10001"
    assert gateway["capabilities"] == {"drops": ["ALL"]}
    assert not any(k in env for env in gateway.get("envs", []) for k in KEYS)
    assert "uploads" not in gateway


def test_gateway_replacement_is_delete_first_and_payload_create_first():
    evaluation = run_stack("local")
    gateway = evaluation.named("edge-local-gateway").options
    assert gateway["deleteBeforeReplaceDefined"] is True and gateway["deleteBeforeReplace"] is True
    for name in ("edge-local-container", "edge-local-gateway-publisher"):
        options = evaluation.named(name).options
        assert options["deleteBeforeReplaceDefined"] is True and options["deleteBeforeReplace"] is False, name


def test_publisher_waits_for_the_gateway_and_carries_keys_only_as_secrets():
    evaluation = run_stack("local")
    publisher = evaluation.named("edge-local-gateway-publisher")
    assert publisher.inputs["wait"] is True
    assert publisher.inputs["networkMode"] == "none"
    assert is_secret(publisher.raw["uploads"]), "the staged keys must stay inside the secret wrapper"
    uploads = unwrap(publisher.raw["uploads"])
    files = {u["file"]: u["content"] for u in uploads}
    settings = json.loads(files["/staging/gateway.json"])
    assert settings["upstream_host"].startswith("tizi-local-dev-edge-local-")
    assert settings["tls"] == "off" and settings["requests_per_minute"] == 600
    assert unwrap(publisher.raw["name"]).endswith(f"-config-{settings['revision']}")
    assert sorted(v for k, v in files.items() if k.startswith("/staging/key-")) == sorted(KEYS)
    deps = {d.split("::")[-1] for d in publisher.options["dependencies"]}
    assert {"edge-local-gateway", "edge-local-container"} <= deps


def test_exposed_site_gets_tls_with_the_site_names():
    evaluation = run_stack("health-prod")
    uploads = unwrap(evaluation.named("clinic-ifrane-gateway-publisher").raw["uploads"])
    settings = json.loads(next(u["content"] for u in uploads if u["file"].endswith("gateway.json")))
    assert settings["tls"] == "site-ca"
    assert settings["tls_names"] == ["clinic-ifrane.health.local", "localhost", "127.0.0.1"]


def test_a_custom_runtime_command_reaches_the_edge_container():
    """Found by the keyless llama.cpp test: the edge used to start the image's own CMD."""
    from components.targets.edge_plan import plan_edge_container

    command = ["python3", "-m", "llama_cpp.server"]
    plan = plan_edge_container("site", "tizi/llm-server:0.1.0", command=command, args=["--port", "8080"])
    assert plan.pulumi_args()["entrypoints"] == ["python3", "-m", "llama_cpp.server"]
    assert plan.pulumi_args()["command"] == ["--port", "8080"]
    run = plan.docker_run_args()
    assert run[run.index("--entrypoint") + 1] == "python3"
    assert run[-5:] == ["tizi/llm-server:0.1.0", "-m", "llama_cpp.server", "--port", "8080"]
    bare = plan_edge_container("site", "tizi/inference-service:0.1.0")
    assert "entrypoints" not in bare.pulumi_args() and "command" not in bare.pulumi_args()
