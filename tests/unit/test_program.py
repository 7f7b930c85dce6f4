"""The Pulumi program under mocks: every stack registers the right resources, secrets stay secret."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import pytest

from .pulumi_harness import Evaluation, evaluate, is_secret, plaintext_paths, stack_config, unwrap
from .settings import API_KEYS

REPO = Path(__file__).resolve().parents[2]
STACKS = {
    p.name.removeprefix("Pulumi.").removesuffix(".yaml"): p
    for p in sorted((REPO / "stacks").glob("Pulumi.*.yaml"))
}
KEYS = API_KEYS.split(",")

K8S_TYPES = [
    "kubernetes:core/v1:Namespace",
    "kubernetes:core/v1:ResourceQuota",
    "kubernetes:core/v1:Secret",
    "kubernetes:helm.sh/v3:Release",
]
EDGE_TYPES = [
    # the payload: its image, key and model volumes, key writer and revision container
    "docker:index/remoteImage:RemoteImage",
    "docker:index/volume:Volume",
    "docker:index/volume:Volume",
    "docker:index/container:Container",
    "docker:index/container:Container",
    # the site network, and the gateway: its image, config and state volumes, the gateway
    # and the publisher of the current configuration
    "docker:index/network:Network",
    "docker:index/remoteImage:RemoteImage",
    "docker:index/volume:Volume",
    "docker:index/volume:Volume",
    "docker:index/container:Container",
    "docker:index/container:Container",
]
# the LLM's weights come from a model image: its RemoteImage and the never-started loader
LLM_EDGE_TYPES = [*EDGE_TYPES, "docker:index/remoteImage:RemoteImage", "docker:index/container:Container"]
KOYEB_TYPES = ["koyeb:index/secret:Secret", "koyeb:index/app:App", "koyeb:index/service:Service"]

# stack -> resource types registered under each target component, in order
EXPECTED = {
    "local": {"edge-local": ("tizi:edge:EdgeService", EDGE_TYPES)},
    "llm-local": {"edge-llm": ("tizi:edge:EdgeService", LLM_EDGE_TYPES)},
    "llm-kind": {"cluster": ("tizi:kubernetes:InferenceService", K8S_TYPES)},
    "kind": {"cluster": ("tizi:kubernetes:InferenceService", K8S_TYPES)},
    "health-prod": {
        "benguerir": ("tizi:kubernetes:InferenceService", K8S_TYPES),
        "clinic-ifrane": ("tizi:edge:EdgeService", EDGE_TYPES),
        "clinic-tata": ("tizi:edge:EdgeService", EDGE_TYPES),
    },
    "tourism-dev": {
        "koyeb-paris": ("tizi:serverless:KoyebService", KOYEB_TYPES),
        "knative-casablanca": ("tizi:knative:KnativeService", K8S_TYPES),
    },
    "interior-prod": {"onprem": ("tizi:kubernetes:InferenceService", K8S_TYPES)},
}


def run_stack(name: str):
    config, secret_keys = stack_config(STACKS[name], API_KEYS)
    return evaluate(config, secret_keys, stack=name)


def test_every_example_stack_is_covered():
    assert set(STACKS) == set(EXPECTED)


@pytest.mark.parametrize("stack", sorted(EXPECTED))
def test_stack_registers_one_component_per_target(stack):
    evaluation = run_stack(stack)
    for target, (component_type, child_types) in EXPECTED[stack].items():
        component = evaluation.named(target)
        assert component.type == component_type
        children = [
            r.type
            for r in evaluation.resources
            if r.name.startswith(f"{target}-") and r.type in {*K8S_TYPES, *EDGE_TYPES, *KOYEB_TYPES}
        ]
        # registration order between independent children is not fixed: compare as multisets
        assert sorted(children) == sorted(child_types), f"{stack}/{target}: {children}"
    assert set(evaluation.outputs["endpoints"]) == set(EXPECTED[stack])
    assert evaluation.outputs["placement"].keys() == EXPECTED[stack].keys()


@pytest.mark.parametrize("stack", sorted(EXPECTED))
def test_api_keys_travel_only_as_secrets(stack):
    evaluation = run_stack(stack)
    for resource in evaluation.resources:
        for key in KEYS:
            assert plaintext_paths(resource.raw, key) == [], f"{resource.type} {resource.name} leaks a key"
    assert all(k not in json.dumps(evaluation.outputs) for k in KEYS)


def test_kubernetes_secret_and_release_values():
    evaluation = run_stack("kind")
    secret = evaluation.named("cluster-api-keys")
    assert is_secret(secret.raw["stringData"])
    assert unwrap(secret.inputs["stringData"]) == {"key-0": KEYS[0], "key-1": KEYS[1]}
    release = evaluation.named("cluster-release")
    values = release.inputs["values"]
    assert release.inputs["namespace"] == "tests-dev"
    assert values["apiKeys"] == {"existingSecret": "inference-api-keys"}
    assert values["placement"] == {"region": "ma-benguerir"}
    assert values["autoscaling"] == {"enabled": True, "minReplicas": 2, "maxReplicas": 3}
    assert values["resources"]["limits"] == {"cpu": "250m", "memory": "256Mi"}
    assert values["image"]["repository"] == "tizi/inference-service" and values["image"]["tag"] == "0.1.0"
    assert values["pdb"] == {"enabled": True, "minAvailable": 1}
    assert values["knative"]["enabled"] is False
    assert values["commonLabels"]["tizi.ma/data-class"] == "personal"
    assert KEYS[0] not in json.dumps(values)


def test_namespace_enforces_restricted_pod_security_and_quota_fits_the_spec():
    evaluation = run_stack("kind")
    labels = evaluation.named("cluster-namespace").inputs["metadata"]["labels"]
    assert labels["pod-security.kubernetes.io/enforce"] == "restricted"
    assert labels["tizi.ma/ministry"] == "tests" and labels["tizi.ma/region"] == "ma-benguerir"
    hard = evaluation.named("cluster-quota").inputs["spec"]["hard"]
    # max 3 replicas + 1 surge pod, each 250m and 256Mi for the payload, plus the gateway's
    # 50m/64Mi requests and 250m/128Mi limits
    assert hard["requests.cpu"] == "1200m" and hard["requests.memory"] == "1280Mi"
    assert hard["limits.cpu"] == "2000m" and hard["limits.memory"] == "1536Mi" and hard["pods"] == "6"


def test_knative_target_uses_the_chart_knative_mode_with_scale_to_zero():
    values = run_stack("tourism-dev").named("knative-casablanca-release").inputs["values"]
    queue = values["knative"].pop("queueProxy")
    assert values["knative"] == {
        "enabled": True,
        "minScale": 0,
        "maxScale": 3,
        "target": 20,
        "initContainers": False,  # the langid payload has no model image to load
    }
    # a namespace quota refuses a queue-proxy without resources
    assert queue["resources"]["limits"] == {"cpu": "250m", "memory": "128Mi"}
    quota = run_stack("tourism-dev").named("knative-casablanca-quota").inputs["spec"]["hard"]
    # 3 + 1 pods of 512Mi payload, 128Mi gateway and 128Mi queue-proxy
    assert quota["limits.memory"] == f"{(512 + 128 + 128) * 4}Mi"
    assert values["autoscaling"]["enabled"] is False


def test_koyeb_service_definition_and_secret():
    evaluation = run_stack("tourism-dev")
    secret = evaluation.named("koyeb-paris-api-keys")
    assert is_secret(secret.raw["value"])
    definition = evaluation.named("koyeb-paris-service").inputs["definition"]
    assert definition["regions"] == ["par"]
    assert definition["scalings"][0]["min"] == 0 and definition["scalings"][0]["max"] == 3
    assert {"key": "TIZI_API_KEYS", "secret": "tourism-dev-inference-api-keys"} in definition["envs"]
    assert all("value" not in env or env["value"] not in KEYS for env in definition["envs"])


def test_edge_container_is_hardened_and_mounts_the_keys_read_only():
    evaluation = run_stack("local")
    container = evaluation.named("edge-local-container")
    inputs = container.inputs
    assert inputs["user"] == "10001:10001"
    assert inputs["readOnly"] is True
    assert inputs["restart"] == "always"
    assert inputs["capabilities"] == {"drops": ["ALL"]}
    assert inputs["securityOpts"] == ["no-new-privileges"]
    assert inputs["logOpts"] == {"max-size": "10m", "max-file": "3"}
    assert inputs["memory"] == 512
    # behind the gateway, on the site's private network: nothing published
    assert inputs["networkMode"] == "tizi-local-dev-edge-local-net"
    assert "PORT=8080" in inputs["envs"] and "TIZI_HOST=0.0.0.0" in inputs["envs"]
    assert "ports" not in inputs
    assert "uploads" not in inputs, "Docker refuses uploads (a copy to /) on a read-only root"
    keys_mount = next(v for v in unwrap(inputs["volumes"]) if v["containerPath"] == "/run/secrets/tizi")
    assert keys_mount["readOnly"] is True
    assert not any(k in env for env in inputs["envs"] for k in KEYS)
    assert evaluation.outputs["endpoints"] == {"edge-local": "http://127.0.0.1:18080"}


def test_edge_keys_are_uploaded_through_a_never_started_writer():
    evaluation = run_stack("local")
    writer = evaluation.named("edge-local-key-writer")
    inputs = writer.inputs
    assert inputs["readOnly"] is False, "the provider copies uploads to /, which must be writable"
    assert inputs["start"] is False and inputs["mustRun"] is False
    assert inputs["networkMode"] == "none" and inputs["capabilities"] == {"drops": ["ALL"]}
    assert inputs["user"] == "10001:10001"
    assert is_secret(writer.raw["uploads"])
    assert [u["file"] for u in unwrap(inputs["uploads"])] == [
        "/run/secrets/tizi/key-0",
        "/run/secrets/tizi/key-1",
    ]
    assert [u["content"] for u in unwrap(inputs["uploads"])] == KEYS
    service_volumes = evaluation.named("edge-local-container").inputs["volumes"]
    assert unwrap(inputs["volumes"])[0]["volumeName"] == unwrap(service_volumes)[0]["volumeName"]


def test_edge_containers_ask_for_create_before_delete_explicitly():
    evaluation = run_stack("local")
    for name in ("edge-local-container", "edge-local-key-writer", "edge-local-keys", "edge-local-models"):
        options = evaluation.named(name).options
        assert options["deleteBeforeReplaceDefined"] is True, f"{name}: upstream's default would delete first"
        assert options["deleteBeforeReplace"] is False, name
    writer_urn = next(r.raw for r in evaluation.resources if r.name == "edge-local-key-writer")
    assert writer_urn is not None
    assert any(
        "edge-local-key-writer" in dep
        for dep in evaluation.named("edge-local-container").options["dependencies"]
    )


def test_edge_containers_get_the_image_by_id():
    evaluation = run_stack("local")
    image = evaluation.named("edge-local-image")
    assert image.type == "docker:index/remoteImage:RemoteImage"
    assert image.inputs["name"] == "tizi/inference-service:0.1.0" and image.inputs["keepLocally"] is True
    expected = "sha256:" + hashlib.sha256(b"tizi/inference-service:0.1.0").hexdigest()
    assert evaluation.named("edge-local-container").inputs["image"] == expected
    assert evaluation.named("edge-local-key-writer").inputs["image"] == expected


def test_edge_sites_publish_on_the_site_address():
    evaluation = run_stack("health-prod")
    assert evaluation.named("clinic-ifrane-image").type == "docker:index/remoteImage:RemoteImage"
    # the clinic's LAN faces the gateway: TLS with the site's CA by default
    assert evaluation.outputs["endpoints"]["clinic-ifrane"] == "https://clinic-ifrane.health.local:18080"
    assert evaluation.outputs["endpoints"]["clinic-tata"] == "https://clinic-tata.health.local:18080"


def test_every_resource_gets_the_stack_labels_through_the_transform():
    evaluation = run_stack("health-prod")
    labelled = [r for r in evaluation.resources if r.transformed is not None]
    assert {r.type for r in labelled} >= {"kubernetes:core/v1:Secret", "docker:index/container:Container"}
    for resource in labelled:
        if resource.type.startswith("kubernetes:"):
            labels = resource.transformed["metadata"]["labels"]
        else:
            labels = {item["label"]: item["value"] for item in resource.transformed["labels"]}
        assert labels["tizi.ma/ministry"] == "health", resource.name
        assert labels["tizi.ma/data-class"] == "sensitive", resource.name


def test_placement_exports_the_rule_that_allowed_each_target():
    placement = run_stack("health-prod").outputs["placement"]
    assert placement["benguerir"]["rule"] == "RES-SENSITIVE"
    assert placement["benguerir"]["fallbacks"] == ["ma-casablanca-nplusone"]
    assert placement["clinic-tata"]["region"] == "ma-edge-clinic-tata"
    assert "Law 09-08" in placement["benguerir"]["source"]


def test_a_non_resident_stack_fails_before_any_resource_is_registered():
    config, secret_keys = stack_config(STACKS["health-prod"], API_KEYS)
    config["tizi:region"] = "eu-paris"
    with pytest.raises(Exception, match=r"tizi:region: \"eu-paris\" is invalid: .*RES-SENSITIVE") as raised:
        evaluate(config, secret_keys, stack="health-prod")
    assert "Law 09-08" in str(raised.value)


def test_an_invalid_stack_registers_nothing():
    config, secret_keys = stack_config(STACKS["kind"], API_KEYS)
    config["tizi:scaling"] = json.dumps({"min": -1})
    evaluation = Evaluation()
    with pytest.raises(Exception, match=r"tizi:scaling\.min: -1 is invalid: must be an integer >= 0"):
        evaluate(config, secret_keys, stack="kind", evaluation=evaluation)
    assert evaluation.resources == [], "nothing may be registered before validation passes"


def test_plaintext_api_keys_in_config_are_refused():
    config, _ = stack_config(STACKS["kind"], API_KEYS)
    with pytest.raises(Exception, match=r"tizi:apiKeys: .* must be encrypted"):
        evaluate(config, [], stack="kind")


@pytest.mark.parametrize("stack", sorted(EXPECTED))
def test_every_stack_complies_with_the_policy_pack(stack):
    from policies.checks import placements, residency_violations, security_violations

    evaluation = run_stack(stack)
    resources = [(r.name, r.type, unwrap(r.transformed or r.inputs)) for r in evaluation.resources]
    found = [p for name, type_, props in resources for p in placements(name, type_, props)]
    assert found, "the policy pack must see where the stack places the service"
    assert residency_violations(found, None) == []
    assert [m for name, type_, props in resources for m in security_violations(name, type_, props)] == []


def test_the_label_transform_hands_back_no_options():
    """Options returned by a transform replace the resource's own, and the SDK's round trip
    drops an explicit delete_before_replace=False: the transform must return none."""
    import pulumi

    from components.targets.labels import label_transform

    transform = label_transform({"tizi.ma/ministry": "health"})
    args = pulumi.ResourceTransformArgs(
        custom=True, type_="docker:index/container:Container", name="c",
        props={"labels": []}, opts=pulumi.ResourceOptions(delete_before_replace=False),
    )  # fmt: skip
    result = transform(args)
    assert result is not None and result.opts is None
    assert result.props["labels"] == [{"label": "tizi.ma/ministry", "value": "health"}]


def test_the_llm_stack_fills_a_read_only_model_volume_from_the_model_image():
    evaluation = run_stack("llm-local")
    model_image = evaluation.named("edge-llm-model-image")
    assert model_image.inputs["name"] == "tizi/model-smollm2:0.1.0"
    loader = evaluation.named("edge-llm-model-loader").inputs
    assert loader["start"] is False and loader["mustRun"] is False and loader["networkMode"] == "none"
    assert unwrap(loader["volumes"])[0]["containerPath"] == "/model"
    service = evaluation.named("edge-llm-container")
    inputs = service.inputs
    mounts = {v["containerPath"]: v for v in unwrap(inputs["volumes"])}
    assert mounts["/var/cache/tizi/models"]["readOnly"] is True
    assert mounts["/var/cache/tizi/models"]["volumeName"] == unwrap(loader["volumes"])[0]["volumeName"]
    env = dict(e.split("=", 1) for e in inputs["envs"])
    assert env["TIZI_MODEL_FILE"] == "SmolLM2-135M-Instruct.Q4_1.gguf" and len(env["TIZI_MODEL_SHA256"]) == 64
    assert env["OMP_WAIT_POLICY"] == "PASSIVE" and env["TIZI_THREADS"] == "1"
    assert any("edge-llm-model-loader" in dep for dep in service.options["dependencies"])
    assert evaluation.named("edge-llm-image").inputs["name"] == "tizi/llm-server:0.1.0"


@pytest.mark.parametrize(
    ("seconds", "shown"), [(5, "5s"), (60, "1m0s"), (66, "1m6s"), (3600, "1h0m0s"), (3725, "1h2m5s")]
)
def test_healthcheck_durations_are_spelled_as_the_provider_reads_them_back(seconds, shown):
    from components.targets.edge_plan import go_duration

    assert go_duration(seconds) == shown
