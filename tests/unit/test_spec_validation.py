"""Bad values for every spec field fail with one precise message naming key, value and rule."""

from __future__ import annotations

import pytest

from components.problems import StackError
from components.sources.stack_input import SecretState, StackInput
from components.validation import ValidStack, validate_stack

from .settings import DELETE, VALID, valid_settings, with_value

ENCRYPTED = {"apiKeys": SecretState.ENCRYPTED}


def validate_settings(settings, secrets, api_keys=None) -> ValidStack:
    """Validate settings as a stack file or the program would hand them over."""
    return validate_stack(StackInput(settings=settings, secret_states=dict(secrets)), api_keys)


# (path, bad value, key named in the message, words the message must contain)
BAD = [
    ("ministry", "Health", "ministry", "lowercase slug"),
    ("ministry", DELETE, "ministry", "(missing)"),
    ("ministry", "x" * 40, "ministry", "2-30 characters"),
    ("environment", "production", "environment", "dev, test, staging, prod"),
    ("dataClass", "secret", "dataClass", "public, personal, sensitive, vital-l2, vital-l1"),
    ("region", "Morocco", "region", "catalogue"),
    ("region", "ma-dakhla", "region", "RES-LIVE"),
    ("region", "eu-paris", "region", "RES-SENSITIVE"),
    ("region", "xx-unknown", "region", "RES-CATALOGUE"),
    ("fallbackRegions", ["ma-benguerir"], "fallbackRegions[0]", "must differ from tizi:region"),
    ("fallbackRegions", ["eu-madrid"], "fallbackRegions[0]", "RES-SENSITIVE"),
    ("fallbackRegions", "ma-casablanca-nplusone", "fallbackRegions", "list of strings"),
    ("legalBasis", {"kind": "vibes", "reference": "x123"}, "legalBasis.kind", "cndp-authorisation"),
    ("legalBasis", {"kind": "consent"}, "legalBasis.reference", "reference"),
    ("legalBasis", "CNDP-1", "legalBasis", "mapping"),
    ("languages", ["ar", "tlh"], "languages", "unknown language code"),
    ("languages", ["ar", "es"], "languages", "must serve 'es'"),
    ("languages", ["fr", "fr"], "languages", "must not repeat"),
    ("service.name", "Inference_1", "service.name", "DNS label"),
    ("service.image", "tizi/inference-service", "service.image", "tag or a digest"),
    ("service.image", "tizi/inference-service:latest", "service.image", "not 'latest'"),
    ("service.image", "TIZI/Bad Image:1", "service.image", "image reference"),
    ("service.image", "tizi/svc@sha256:1234", "service.image", "64 hex"),
    ("service.port", 80, "service.port", "between 1024 and 65535"),
    ("service.port", "8080", "service.port", "integer"),
    ("service.port", 70000, "service.port", "between 1024 and 65535"),
    ("service.env", {"lower": "x"}, "service.env.lower", "[A-Z_]"),
    ("service.env", {"API_TOKEN": "hunter2"}, "service.env.API_TOKEN", "looks like a secret"),
    ("service.env", {"MODE": ["a"]}, "service.env.MODE", "string or a number"),
    ("service.secrets", ["other"], "service.secrets", "must include apiKeys"),
    ("service.secrets", ["apiKeys", "dbPassword"], "service.secrets[1]", "unknown secret"),
    ("service.health", {"readiness": "readyz"}, "service.health.readiness", "starting with '/'"),
    ("service.health", {"ready": "/r"}, "service.health.ready", "unknown key"),
    ("service.command", "python -m x", "service.command", "list of strings"),
    ("service.colour", "blue", "service.colour", "unknown key"),
    ("model.name", DELETE, "model.name", "must name the model"),
    ("model.source", "hf:some/model", "model.source", "never fetched from a hub"),
    ("model.source", "weights.bin", "model.source", "<scheme>:<location>"),
    ("model.size", "2GB", "model.size", "20Mi or 4Gi"),
    ("model.languages", [], "model.languages", "at least one language"),
    ("resources.cpu", "lots", "resources.cpu", "500m or 2"),
    ("resources.cpu", "0m", "resources.cpu", "more than 0"),
    ("resources.memory", "512MB", "resources.memory", "512Mi or 2Gi"),
    ("resources.memory", "32Mi", "resources.memory", "at least 64Mi"),
    ("resources.gpu", {"count": 1}, "resources.gpu.type", "nvidia-l4"),
    ("resources.gpu", {"count": 9, "type": "nvidia-l4"}, "resources.gpu.count", "between 0 and 8"),
    ("resources.gpu", {"count": 0, "type": "nvidia-l4"}, "resources.gpu.type", "must be empty"),
    ("scaling.min", -1, "scaling.min", "must be an integer >= 0"),
    ("scaling.min", 0, "scaling.min", "scale-to-zero is supported on knative, koyeb only"),
    ("scaling.min", True, "scaling.min", "integer"),
    ("scaling.max", 0, "scaling.max", "between 1 and 100"),
    ("scaling.max", 1, "scaling.max", "must be >= scaling.min (2)"),
    ("scaling.targetConcurrency", 0, "scaling.targetConcurrency", "between 1 and 1000"),
    ("targets", [], "targets", "non-empty list"),
    ("targets", DELETE, "targets", "non-empty list"),
    ("targets[0].kind", "lambda", "targets[0].kind", "kubernetes, knative, koyeb, edge"),
    ("targets[0].namespace", "Bad_NS", "targets[0].namespace", "DNS label"),
    ("targets[0].site", "ma-edge-x1", "targets[0].site", "unknown key"),
    ("targets[1].site", "clinic", "targets[1].site", "ma-edge-<site>"),
    ("targets[1].host", "http://clinic:2375", "targets[1].host", "unix:///path, tcp://host:port or ssh://"),
    ("targets[1].hostPort", 22, "targets[1].hostPort", "between 1024 and 65535"),
    ("targets[1].imagePull", "always", "targets[1].imagePull", "never, missing"),
    ("targets[1].metricsPort", 80, "targets[1].metricsPort", "between 1024 and 65535"),
    ("gateway", "fast", "gateway", "mapping"),
    ("gateway.requestsPerMinute", 0, "gateway.requestsPerMinute", "between 1 and 100000"),
    ("gateway.requestsPerMinute", "600", "gateway.requestsPerMinute", "integer"),
    ("gateway.burst", 10**9, "gateway.burst", "between 1 and 100000"),
    ("gateway.tls", "on", "gateway.tls", "off, site-ca"),
    ("gateway.tls", "off", "gateway.tls", "plain HTTP is allowed only on loopback"),
    ("gateway.retries", 3, "gateway.retries", "unknown key"),
    ("targets[1].name", "cluster", "targets", "'cluster' repeats"),
    ("unknownKey", 1, "unknownKey", "unknown key"),
]


def _message_for(settings, secrets=ENCRYPTED, api_keys=None) -> list[str]:
    with pytest.raises(StackError) as raised:
        validate_settings(settings, secrets, api_keys)
    return [str(p) for p in raised.value.problems]


@pytest.mark.parametrize(("path", "value", "key", "words"), BAD, ids=[f"{c[0]}={c[1]!r}"[:60] for c in BAD])
def test_bad_value_is_refused_with_a_precise_message(path, value, key, words):
    messages = _message_for(with_value(path, value))
    matching = [m for m in messages if m.startswith(f"tizi:{key}: ") and words in m]
    assert matching, f"no message for tizi:{key} containing {words!r} in {messages}"
    assert " is invalid: " in matching[0]


def test_message_format_matches_the_documented_example():
    assert _message_for(with_value("scaling.min", -1)) == [
        "tizi:scaling.min: -1 is invalid: must be an integer >= 0"
    ]


def test_all_problems_are_reported_at_once():
    settings = with_value("scaling.min", -1)
    settings["service"]["port"] = 80
    settings["region"] = "eu-paris"
    settings["resources"]["memory"] = "lots"
    keys = {m.split(":", 2)[1] for m in _message_for(settings)}
    assert {"scaling.min", "service.port", "region", "resources.memory"} <= keys


def test_valid_settings_pass_and_build_the_spec():
    valid = validate_settings(valid_settings(), ENCRYPTED)
    assert valid.spec.ministry == "health"
    assert valid.spec.image_repository == "tizi/inference-service"
    assert valid.spec.image_tag == "0.1.0"
    assert [p.decision.rule_id for p in valid.placement.targets] == ["RES-SENSITIVE", "RES-SENSITIVE"]
    assert [fb.region_id for fb in valid.placement.targets[0].fallbacks] == ["ma-casablanca-nplusone"]
    assert valid.placement.targets[1].decision.region_id == "ma-edge-clinic-ifrane"


def test_digest_pinned_image_is_accepted():
    digest = "sha256:" + "a" * 64
    valid = validate_settings(with_value("service.image", f"tizi/inference-service@{digest}"), ENCRYPTED)
    assert valid.spec.image_digest == digest and valid.spec.image_tag == ""


@pytest.mark.parametrize(
    ("state", "words"),
    [(SecretState.MISSING, "must be set as a secret"), (SecretState.PLAINTEXT, "must be encrypted")],
    ids=["missing", "plaintext"],
)
def test_api_keys_must_be_an_encrypted_secret(state, words):
    messages = _message_for(valid_settings(), {"apiKeys": state})
    assert any(m.startswith("tizi:apiKeys: ") and words in m for m in messages)


@pytest.mark.parametrize(
    ("keys", "words"),
    [
        ("short", "16-256 characters"),
        ("", "at least one key"),
        ("a" * 20 + "," + "a" * 20, "must not repeat"),
        (",".join(f"key-{i:02d}-xxxxxxxxxxxxxx" for i in range(9)), "at most 8 keys"),
    ],
    ids=["too-short", "empty", "repeated", "too-many"],
)
def test_api_key_shape_is_checked_without_quoting_keys(keys, words):
    messages = _message_for(valid_settings(), ENCRYPTED, api_keys=keys)
    assert any(words in m for m in messages)
    for key in filter(None, keys.split(",")):
        assert all(key not in m for m in messages), "a key leaked into an error message"


def test_secret_like_env_value_is_redacted_in_the_message():
    messages = _message_for(with_value("service.env", {"DB_PASSWORD": "hunter2-secret"}))
    assert all("hunter2-secret" not in m for m in messages)


def test_sensitive_abroad_allowed_with_recorded_cndp_authorisation():
    settings = valid_settings()
    settings["region"] = "eu-paris"
    settings["fallbackRegions"] = []
    settings["legalBasis"] = {"kind": "cndp-authorisation", "reference": "CNDP-A-2026-0042"}
    valid = validate_settings(settings, ENCRYPTED)
    assert "CNDP-A-2026-0042" in valid.placement.targets[0].decision.reason


def test_koyeb_refused_for_personal_data_and_allowed_for_public():
    settings = valid_settings()
    settings["dataClass"] = "personal"
    settings["scaling"] = {"min": 0, "max": 2}
    settings["targets"] = [{"kind": "koyeb", "region": "eu-paris"}]
    messages = _message_for(settings)
    assert any(m.startswith('tizi:targets[0].region: "eu-paris"') and "RES-PERSONAL" in m for m in messages)
    settings["dataClass"] = "public"
    assert validate_settings(settings, ENCRYPTED).placement.targets[0].decision.allowed


def test_gpu_is_refused_on_edge_targets():
    messages = _message_for(with_value("resources.gpu", {"count": 1, "type": "nvidia-l4"}))
    assert any("edge targets are served CPU-only" in m and "targets[1] is edge" in m for m in messages)


def test_fixture_is_valid():
    assert VALID["dataClass"] == "sensitive"
    validate_settings(valid_settings(), ENCRYPTED)


def test_an_edge_metrics_port_equal_to_the_site_port_is_refused():
    settings = with_value("targets[1].hostPort", 18080)
    settings["targets"][1]["metricsPort"] = 18080
    messages = _message_for(settings)
    assert any(
        m.startswith("tizi:targets[1].metricsPort: ") and "must differ from targets[1].hostPort" in m
        for m in messages
    ), messages


def _knative_with_model_image(**target: object) -> dict:
    settings = with_value("model.source", "oci:tizi/model-smollm2:0.1.0")
    settings["targets"] = [{"kind": "knative", "name": "serverless", "context": "kind-tizi", **target}]
    return settings


def test_a_model_image_on_knative_needs_init_containers_allowed():
    messages = [m for m in _message_for(_knative_with_model_image()) if "initContainers" in m]
    assert messages == [
        "tizi:targets[0].initContainers: false is invalid: must be true when tizi:model.image is set: "
        "the weights arrive by an init container, which Knative allows only with "
        "kubernetes.podspec-init-containers: enabled in its config-features (enable it on the cluster, "
        "then set initContainers: true)"
    ]


def test_a_knative_target_that_allows_init_containers_takes_a_model_image():
    valid = validate_settings(_knative_with_model_image(initContainers=True), ENCRYPTED)
    [target] = valid.spec.targets
    assert target.init_containers is True and valid.spec.model.image == "tizi/model-smollm2:0.1.0"


def test_init_containers_must_be_a_boolean():
    messages = _message_for(_knative_with_model_image(initContainers="yes"))
    assert 'tizi:targets[0].initContainers: "yes" is invalid: must be true or false' in messages
