"""Tests for the Helm chart charts/inference-service.

Every case renders the chart with the real `helm template` (one render per values
set, cached) and asserts on the parsed documents, in the style of astronomer's
chart tests: a `render_chart(values=...)` helper, policy tests parametrized over
every rendered workload with `Kind/name` ids, and structural validation of each
document against the Kubernetes models of the `kubernetes` client (offline).

helm comes from PATH or from scripts/toolchain.sh's cache
(${TIZI_CACHE:-~/.cache/tizi}/toolchain); without it the tests skip, or fail when
CI=true.
"""

from __future__ import annotations

import copy
import functools
import json
import os
import re
import shutil
import subprocess
import tempfile
from pathlib import Path
from typing import Any

import jsonschema
import pytest
import yaml
from kubernetes.client import ApiClient

pytestmark = pytest.mark.unit

REPO = Path(__file__).resolve().parents[2]
CHART = REPO / "charts" / "inference-service"
CI_DIR = CHART / "ci"
KUBE_VERSION = "1.31.0"
RELEASE = "tizi"
NAMESPACE = "tizi-test"
SECRET = "tizi-api-keys"
# Smallest values that render: the API-key Secret is the only required value.
BASE: dict[str, Any] = {"apiKeys": {"existingSecret": SECRET}}

CI_PROFILES = sorted(p.name.removesuffix("-values.yaml") for p in CI_DIR.glob("*-values.yaml"))
EXPECTED_PROFILES = ["gpu", "ingress", "knative", "kubernetes"]

SELECTOR_KEYS = {"app.kubernetes.io/name", "app.kubernetes.io/instance"}
METADATA_KEYS = SELECTOR_KEYS | {
    "app.kubernetes.io/managed-by",
    "app.kubernetes.io/version",
    "helm.sh/chart",
}
KNATIVE_API = "serving.knative.dev/v1"


# --------------------------------------------------------------------------- helm


def find_helm() -> str | None:
    """helm on PATH first, then the binary scripts/toolchain.sh builds into its cache."""
    on_path = shutil.which("helm")
    if on_path:
        return on_path
    cache = Path(os.environ.get("TIZI_CACHE") or Path.home() / ".cache" / "tizi") / "toolchain"
    for pattern in ("bin/helm", "*/bin/helm", "*/helm", "**/helm"):
        for candidate in sorted(cache.glob(pattern)):
            if candidate.is_file() and os.access(candidate, os.X_OK):
                return str(candidate)
    return None


HELM = find_helm()
HELM_MISSING = (
    "helm not found on PATH nor under ${TIZI_CACHE:-~/.cache/tizi}/toolchain; "
    "build it with scripts/toolchain.sh"
)


def require_helm() -> str:
    if HELM is None:
        if os.environ.get("CI") == "true":
            pytest.fail(HELM_MISSING)
        pytest.skip(HELM_MISSING)
    return HELM


class HelmError(Exception):
    """`helm` exited non-zero; the message is its stderr."""


def _run_helm(args: list[str], values: dict[str, Any]) -> str:
    helm = require_helm()
    with tempfile.NamedTemporaryFile("w", suffix=".yaml", prefix="values-") as handle:
        yaml.safe_dump(values, handle)
        handle.flush()
        proc = subprocess.run(
            [helm, *args, "--values", handle.name],
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )
    if proc.returncode != 0:
        raise HelmError(proc.stderr.strip())
    return proc.stdout


@functools.cache
def _render_cached(values_json: str, release: str, namespace: str) -> tuple[dict, ...]:
    out = _run_helm(
        [
            "template",
            release,
            str(CHART),
            "--namespace",
            namespace,
            "--kube-version",
            KUBE_VERSION,
        ],
        json.loads(values_json),
    )
    return tuple(doc for doc in yaml.safe_load_all(out) if doc)


def render_chart(
    values: dict[str, Any] | None = None,
    release: str = RELEASE,
    namespace: str = NAMESPACE,
) -> list[dict]:
    """Render the chart with `helm template`; returns the documents (a fresh copy).

    Raises HelmError with helm's stderr when rendering fails (schema, `required`,
    `fail`). Renders are cached per (values, release, namespace).
    """
    key = json.dumps(values or {}, sort_keys=True)
    return copy.deepcopy(list(_render_cached(key, release, namespace)))


NOTES_PROBE = """apiVersion: v1
kind: ConfigMap
metadata:
  name: notes-under-test
data:
  notes: {{ tpl (.Files.Get "notes-under-test.txt") . | quote }}
"""


@functools.cache
def _notes_chart() -> Path:
    """A copy of the chart whose NOTES.txt also renders as a ConfigMap.

    `helm template` never prints NOTES.txt and `helm install --dry-run` needs a
    cluster, so the copy renders the same text through `tpl` instead.
    """
    root = Path(tempfile.mkdtemp(prefix="tizi-notes-chart-")) / CHART.name
    shutil.copytree(CHART, root)
    shutil.copy(CHART / "templates" / "NOTES.txt", root / "notes-under-test.txt")
    (root / "templates" / "zz-notes-under-test.yaml").write_text(NOTES_PROBE)
    return root


@functools.cache
def _notes_cached(values_json: str) -> str:
    out = _run_helm(
        [
            "template",
            RELEASE,
            str(_notes_chart()),
            "--namespace",
            NAMESPACE,
            "--kube-version",
            KUBE_VERSION,
            "--show-only",
            "templates/zz-notes-under-test.yaml",
        ],
        json.loads(values_json),
    )
    return yaml.safe_load(out)["data"]["notes"]


def render_notes(values: dict[str, Any] | None = None) -> str:
    """NOTES.txt as `helm install` would print it."""
    return _notes_cached(json.dumps(values or {}, sort_keys=True))


def with_base(**overrides: Any) -> dict[str, Any]:
    values = copy.deepcopy(BASE)
    values.update(overrides)
    return values


def ci_values(profile: str) -> dict[str, Any]:
    return yaml.safe_load((CI_DIR / f"{profile}-values.yaml").read_text())


def find(docs: list[dict], kind: str, api_version: str | None = None) -> list[dict]:
    return [d for d in docs if d["kind"] == kind and (api_version is None or d["apiVersion"] == api_version)]


def one(docs: list[dict], kind: str, api_version: str | None = None) -> dict:
    found = find(docs, kind, api_version)
    assert len(found) == 1, f"expected one {kind}, got {[d['metadata']['name'] for d in found]}"
    return found[0]


def kinds(docs: list[dict]) -> set[tuple[str, str]]:
    return {(d["apiVersion"], d["kind"]) for d in docs}


def pod_spec(workload: dict) -> dict:
    return workload["spec"]["template"]["spec"]


def container(workload: dict) -> dict:
    return pod_spec(workload)["containers"][0]


def deployment(values: dict[str, Any]) -> dict:
    return one(render_chart(values), "Deployment")


# ------------------------------------------------ offline Kubernetes validation

MODELS = {
    ("v1", "ConfigMap"): "V1ConfigMap",
    ("v1", "Service"): "V1Service",
    ("v1", "ServiceAccount"): "V1ServiceAccount",
    ("apps/v1", "Deployment"): "V1Deployment",
    ("autoscaling/v2", "HorizontalPodAutoscaler"): "V2HorizontalPodAutoscaler",
    ("policy/v1", "PodDisruptionBudget"): "V1PodDisruptionBudget",
    ("networking.k8s.io/v1", "NetworkPolicy"): "V1NetworkPolicy",
    ("networking.k8s.io/v1", "Ingress"): "V1Ingress",
}
_API = ApiClient()


def _dropped(original: Any, roundtrip: Any, path: str = "") -> list[str]:
    """Paths present in `original` that the typed model dropped (unknown fields)."""
    if isinstance(original, dict):
        if not isinstance(roundtrip, dict):
            return [path or "."]
        out = []
        for key, value in original.items():
            if key not in roundtrip:
                out.append(f"{path}.{key}")
            else:
                out += _dropped(value, roundtrip[key], f"{path}.{key}")
        return out
    if isinstance(original, list):
        if not isinstance(roundtrip, list) or len(original) != len(roundtrip):
            return [path]
        return [p for i, o in enumerate(original) for p in _dropped(o, roundtrip[i], f"{path}[{i}]")]
    return []


def typed_errors(obj: dict, model: str) -> list[str]:
    """Deserialize into the kubernetes client's model (required fields are checked)
    and back; any field that does not survive is not part of the API."""
    typed = _API._ApiClient__deserialize(obj, model)  # astronomer's render_k8s_object
    return _dropped(obj, _API.sanitize_for_serialization(typed))


def validate_document(doc: dict) -> None:
    key = (doc["apiVersion"], doc["kind"])
    if key == (KNATIVE_API, "Service"):
        template = copy.deepcopy(doc["spec"]["template"])
        spec = template["spec"]
        spec.pop("containerConcurrency", None)  # Knative's own PodSpec fields
        spec.pop("timeoutSeconds", None)
        for ctr in spec["containers"]:  # Knative probes the serving port itself
            for probe in ("livenessProbe", "readinessProbe"):
                ctr.get(probe, {}).get("httpGet", {}).setdefault("port", 0)
        errors = typed_errors(template["metadata"], "V1ObjectMeta")
        errors += typed_errors(spec, "V1PodSpec")
        assert doc["metadata"]["name"]
    else:
        assert key in MODELS, f"unexpected document {key}"
        errors = typed_errors(doc, MODELS[key])
    assert not errors, f"{doc['kind']}/{doc['metadata']['name']}: unknown fields {errors}"


# Knative Serving's PodSpec allowlist (pkg/apis/serving/fieldmask.go), with the
# feature-flagged fields (affinity, nodeSelector, tolerations, securityContext).
KNATIVE_POD_FIELDS = {
    "serviceAccountName",
    "containers",
    "volumes",
    "imagePullSecrets",
    "enableServiceLinks",
    "automountServiceAccountToken",
    "containerConcurrency",
    "timeoutSeconds",
    "affinity",
    "nodeSelector",
    "tolerations",
    "securityContext",
}
KNATIVE_CONTAINER_FIELDS = {
    "name",
    "args",
    "command",
    "env",
    "workingDir",
    "envFrom",
    "image",
    "imagePullPolicy",
    "livenessProbe",
    "ports",
    "readinessProbe",
    "resources",
    "securityContext",
    "terminationMessagePath",
    "terminationMessagePolicy",
    "volumeMounts",
}
KNATIVE_POD_SECURITY_FIELDS = {
    "runAsUser",
    "runAsGroup",
    "runAsNonRoot",
    "fsGroup",
    "supplementalGroups",
}


# ------------------------------------------------------------- ci profiles


def test_every_target_profile_has_a_ci_values_file() -> None:
    assert CI_PROFILES == EXPECTED_PROFILES


@pytest.mark.parametrize("profile", CI_PROFILES)
def test_ci_profile_renders_valid_kubernetes_objects(profile: str) -> None:
    docs = render_chart(ci_values(profile))
    assert docs
    for doc in docs:
        validate_document(doc)
        assert doc["metadata"]["namespace"] == NAMESPACE


@pytest.mark.parametrize("profile", CI_PROFILES)
def test_helm_lint_is_clean(profile: str) -> None:
    out = _run_helm(
        ["lint", str(CHART), "--strict", "--kube-version", KUBE_VERSION],
        ci_values(profile),
    )
    assert "0 chart(s) failed" in out
    assert "[WARNING]" not in out and "[ERROR]" not in out, out


def test_default_profile_renders_the_kubernetes_set() -> None:
    assert kinds(render_chart(BASE)) == {
        ("v1", "ConfigMap"),
        ("v1", "ServiceAccount"),
        ("v1", "Service"),
        ("apps/v1", "Deployment"),
        ("autoscaling/v2", "HorizontalPodAutoscaler"),
        ("policy/v1", "PodDisruptionBudget"),
        ("networking.k8s.io/v1", "NetworkPolicy"),
    }


# ------------------------------------- values.yaml <=> schema <=> README table

PARAM_RE = re.compile(r"^\s*## @param (\S+) (.+)$")
README_ROW_RE = re.compile(r"^\| `([^`]+)` \| (.*) \| `(.*)` \|$")


def _values() -> dict[str, Any]:
    return yaml.safe_load((CHART / "values.yaml").read_text())


def _schema() -> dict[str, Any]:
    return json.loads((CHART / "values.schema.json").read_text())


def _params() -> list[str]:
    lines = (CHART / "values.yaml").read_text().splitlines()
    return [m.group(1) for line in lines if (m := PARAM_RE.match(line))]


def _lookup(tree: dict[str, Any], dotted: str) -> Any:
    node: Any = tree
    for part in dotted.split("."):
        assert isinstance(node, dict) and part in node, f"{dotted}: not in values.yaml"
        node = node[part]
    return node


def _leaves(tree: dict[str, Any], prefix: str = "") -> list[str]:
    out = []
    for key, value in tree.items():
        path = f"{prefix}{key}"
        if isinstance(value, dict) and value:
            out += _leaves(value, f"{path}.")
        else:
            out.append(path)
    return out


def _schema_paths(node: dict[str, Any], prefix: str = "") -> list[str]:
    out = []
    for key, sub in node.get("properties", {}).items():
        path = f"{prefix}{key}"
        out.append(path)
        out += _schema_paths(sub, f"{path}.")
    return out


def _readme_rows() -> dict[str, str]:
    rows = {}
    for line in (CHART / "README.md").read_text().splitlines():
        if m := README_ROW_RE.match(line):
            assert m.group(1) not in rows, f"{m.group(1)}: twice in the README table"
            rows[m.group(1)] = m.group(3)
    return rows


def readme_value(value: Any) -> str:
    """How the README table shows a default (Bitnami readme-generator style)."""
    if isinstance(value, str):
        return value if value else '""'
    return json.dumps(value, separators=(",", ":"))


def test_values_are_documented_once_each() -> None:
    params = _params()
    assert len(params) == len(set(params)), "a value is documented twice"
    for param in params:
        _lookup(_values(), param)


def test_every_value_has_a_param_line() -> None:
    params = set(_params())
    undocumented = [
        leaf for leaf in _leaves(_values()) if not any(leaf == p or leaf.startswith(f"{p}.") for p in params)
    ]
    assert not undocumented, f"values without `## @param`: {undocumented}"


def test_schema_and_values_have_the_same_keys() -> None:
    schema, values = _schema(), _values()
    assert schema["additionalProperties"] is False
    assert set(schema["properties"]) == set(values)
    for path in _schema_paths(schema):
        _lookup(values, path)  # no stale schema property
    schema_paths = set(_schema_paths(schema))
    missing = [p for p in _params() if p not in schema_paths]
    assert not missing, f"documented values missing from values.schema.json: {missing}"


def test_values_yaml_validates_against_its_schema() -> None:
    schema = _schema()
    jsonschema.Draft7Validator.check_schema(schema)
    jsonschema.Draft7Validator(schema).validate(_values())
    for profile in CI_PROFILES:
        merged = copy.deepcopy(_values())
        _deep_update(merged, ci_values(profile))
        jsonschema.Draft7Validator(schema).validate(merged)


def _deep_update(dst: dict, src: dict) -> None:
    for key, value in src.items():
        if isinstance(value, dict) and isinstance(dst.get(key), dict):
            _deep_update(dst[key], value)
        else:
            dst[key] = value


def test_readme_table_matches_values() -> None:
    rows, values = _readme_rows(), _values()
    assert list(rows) == _params(), "README table and `## @param` lines differ (keys or order)"
    for key, shown in rows.items():
        assert shown == readme_value(_lookup(values, key)), f"{key}: README default drifted"


# ------------------------------------------------------------------ policy


def _workload_params() -> list[Any]:
    """(profile, workload) for every workload every ci profile renders, id Kind/name."""
    if HELM is None:
        return [pytest.param(None, None, id="helm-missing")]
    params = []
    for profile in CI_PROFILES:
        try:
            docs = render_chart(ci_values(profile))
        except HelmError as err:
            params.append(pytest.param(profile, str(err), id=f"{profile}:render-error"))
            continue
        for doc in docs:
            if doc["kind"] == "Deployment" or (doc["kind"] == "Service" and doc["apiVersion"] == KNATIVE_API):
                wid = f"{profile}:{doc['kind']}/{doc['metadata']['name']}"
                params.append(pytest.param(profile, doc, id=wid))
    return params


WORKLOADS = _workload_params()


def _workload(profile: str | None, doc: Any) -> dict:
    require_helm()
    if isinstance(doc, str):
        pytest.fail(f"{profile}: {doc}")
    return doc


def _effective(workload: dict, field: str) -> Any:
    """A security setting as the kubelet applies it: container first, then pod."""
    ctr = container(workload).get("securityContext", {})
    pod = pod_spec(workload).get("securityContext", {})
    return ctr.get(field, pod.get(field))


@pytest.mark.parametrize(("profile", "doc"), WORKLOADS)
def test_runs_as_non_root(profile: str, doc: Any) -> None:
    w = _workload(profile, doc)
    assert _effective(w, "runAsNonRoot") is True
    assert _effective(w, "runAsUser") not in (None, 0)


@pytest.mark.parametrize(("profile", "doc"), WORKLOADS)
def test_read_only_root_filesystem(profile: str, doc: Any) -> None:
    w = _workload(profile, doc)
    assert container(w)["securityContext"]["readOnlyRootFilesystem"] is True


@pytest.mark.parametrize(("profile", "doc"), WORKLOADS)
def test_no_privilege_escalation(profile: str, doc: Any) -> None:
    w = _workload(profile, doc)
    sc = container(w)["securityContext"]
    assert sc["allowPrivilegeEscalation"] is False
    assert not sc.get("privileged", False)


@pytest.mark.parametrize(("profile", "doc"), WORKLOADS)
def test_drops_all_capabilities(profile: str, doc: Any) -> None:
    w = _workload(profile, doc)
    caps = container(w)["securityContext"]["capabilities"]
    assert caps["drop"] == ["ALL"]
    assert not caps.get("add")


@pytest.mark.parametrize(("profile", "doc"), WORKLOADS)
def test_seccomp_runtime_default(profile: str, doc: Any) -> None:
    w = _workload(profile, doc)
    assert _effective(w, "seccompProfile") == {"type": "RuntimeDefault"}


@pytest.mark.parametrize(("profile", "doc"), WORKLOADS)
def test_no_service_account_token(profile: str, doc: Any) -> None:
    w = _workload(profile, doc)
    assert pod_spec(w)["automountServiceAccountToken"] is False
    for sa in find(render_chart(ci_values(profile)), "ServiceAccount"):
        assert sa["automountServiceAccountToken"] is False


@pytest.mark.parametrize(("profile", "doc"), WORKLOADS)
def test_resources_set(profile: str, doc: Any) -> None:
    res = container(_workload(profile, doc))["resources"]
    for section in ("requests", "limits"):
        assert {"cpu", "memory"} <= set(res[section]), f"resources.{section}"


@pytest.mark.parametrize(("profile", "doc"), WORKLOADS)
def test_probes_set(profile: str, doc: Any) -> None:
    w = _workload(profile, doc)
    ctr = container(w)
    probes = ["livenessProbe", "readinessProbe"]
    if w["kind"] == "Deployment":
        probes.append("startupProbe")  # Knative rejects startupProbe
    for probe in probes:
        assert ctr[probe]["httpGet"]["path"].startswith("/"), probe


@pytest.mark.parametrize(("profile", "doc"), WORKLOADS)
def test_api_keys_mounted_read_only_from_existing_secret(profile: str, doc: Any) -> None:
    w = _workload(profile, doc)
    values = ci_values(profile)
    volumes = {v["name"]: v for v in pod_spec(w)["volumes"]}
    assert volumes["api-keys"]["secret"] == {
        "secretName": values["apiKeys"]["existingSecret"],
        "defaultMode": 0o400,
    }
    mounts = {m["name"]: m for m in container(w)["volumeMounts"]}
    assert mounts["api-keys"] == {
        "name": "api-keys",
        "mountPath": "/run/secrets/tizi",
        "readOnly": True,
    }
    env = {e["name"]: e.get("value") for e in container(w)["env"]}
    assert env["TIZI_API_KEYS_DIR"] == "/run/secrets/tizi"
    # the read-only root filesystem needs writable scratch space
    assert volumes["tmp"]["emptyDir"] == {}
    assert mounts["tmp"]["mountPath"] == "/tmp"
    assert "sizeLimit" in volumes["model-cache"]["emptyDir"]
    assert mounts["model-cache"]["mountPath"] == "/var/cache/tizi/models"


# ------------------------------------------------------------------- labels


def test_selector_labels_are_only_name_and_instance() -> None:
    values = with_base(commonLabels={"tizi.ma/ministry": "sante"}, podLabels={"team": "ia"})
    docs = render_chart(values)
    dep = one(docs, "Deployment")
    selectors = {
        "Deployment": dep["spec"]["selector"]["matchLabels"],
        "Service": one(docs, "Service")["spec"]["selector"],
        "PodDisruptionBudget": one(docs, "PodDisruptionBudget")["spec"]["selector"]["matchLabels"],
        "NetworkPolicy": one(docs, "NetworkPolicy")["spec"]["podSelector"]["matchLabels"],
        "topologySpread": pod_spec(dep)["topologySpreadConstraints"][0]["labelSelector"]["matchLabels"],
    }
    for where, selector in selectors.items():
        assert selector == {
            "app.kubernetes.io/name": "inference-service",
            "app.kubernetes.io/instance": RELEASE,
        }, where
    # the pods carry what the selectors match, plus the extra labels
    pod_labels = dep["spec"]["template"]["metadata"]["labels"]
    assert selectors["Deployment"].items() <= pod_labels.items()
    assert pod_labels["team"] == "ia"


def test_metadata_labels_are_the_full_set_plus_common_labels() -> None:
    docs = render_chart(with_base(commonLabels={"tizi.ma/ministry": "sante"}))
    for doc in docs:
        labels = doc["metadata"]["labels"]
        assert set(labels) >= METADATA_KEYS, f"{doc['kind']}: {labels}"
        assert labels["helm.sh/chart"] == "inference-service-0.1.0"
        assert labels["tizi.ma/ministry"] == "sante"


def test_common_labels_cannot_change_the_selector_labels() -> None:
    docs = render_chart(with_base(commonLabels={"app.kubernetes.io/name": "other"}))
    assert one(docs, "Deployment")["metadata"]["labels"]["app.kubernetes.io/name"] == ("inference-service")


def test_common_annotations_on_every_resource() -> None:
    for doc in render_chart(with_base(commonAnnotations={"tizi.ma/owner": "dsi"})):
        assert doc["metadata"]["annotations"]["tizi.ma/owner"] == "dsi", doc["kind"]


# ------------------------------------------------------------ workload shape


def test_model_surfaces_as_env_and_pod_annotations() -> None:
    values = with_base(
        model={"name": "atlas-chat-2b", "source": "hf://x/y", "languages": ["ary", "fr"]},
        env={"TIZI_LOG_LEVEL": "debug", "WORKERS": 2},
    )
    docs = render_chart(values)
    data = one(docs, "ConfigMap")["data"]
    assert data["TIZI_MODEL_NAME"] == "atlas-chat-2b"
    assert data["TIZI_MODEL_LANGUAGES"] == "ary,fr"
    assert data["TIZI_LOG_LEVEL"] == "debug"
    assert data["WORKERS"] == "2"
    dep = one(docs, "Deployment")
    assert container(dep)["envFrom"] == [
        {"configMapRef": {"name": one(docs, "ConfigMap")["metadata"]["name"]}}
    ]
    annotations = dep["spec"]["template"]["metadata"]["annotations"]
    assert annotations["tizi.ma/model-name"] == "atlas-chat-2b"
    assert annotations["tizi.ma/model-languages"] == "ary,fr"


def test_config_checksum_changes_with_the_config() -> None:
    def checksum(values: dict) -> str:
        return deployment(values)["spec"]["template"]["metadata"]["annotations"]["checksum/config"]

    assert checksum(BASE) == checksum(copy.deepcopy(BASE))
    assert checksum(BASE) != checksum(with_base(env={"TIZI_LOG_LEVEL": "debug"}))
    assert checksum(BASE) != checksum(with_base(model={"name": "other"}))


def test_image_digest_replaces_the_tag() -> None:
    digest = "sha256:" + "a" * 64
    assert container(deployment(BASE))["image"] == "tizi/inference-service:0.1.0"
    pinned = with_base(image={"digest": digest})
    assert container(deployment(pinned))["image"] == f"tizi/inference-service@{digest}"


def test_probe_paths_are_configurable() -> None:
    values = with_base(probes={"readiness": {"path": "/v1/ready"}, "startup": {"path": "/up"}})
    ctr = container(deployment(values))
    assert ctr["readinessProbe"]["httpGet"] == {"path": "/v1/ready", "port": "http"}
    assert ctr["startupProbe"]["httpGet"]["path"] == "/up"
    assert ctr["livenessProbe"]["httpGet"]["path"] == "/healthz"


def test_service_targets_the_named_http_port() -> None:
    docs = render_chart(BASE)
    svc = one(docs, "Service")
    assert svc["spec"]["type"] == "ClusterIP"
    assert svc["spec"]["ports"] == [{"name": "http", "port": 80, "targetPort": "http", "protocol": "TCP"}]
    ports = container(one(docs, "Deployment"))["ports"]
    assert ports == [{"name": "http", "containerPort": 8080, "protocol": "TCP"}]


def test_hpa_owns_replicas_when_autoscaling() -> None:
    docs = render_chart(BASE)
    assert "replicas" not in one(docs, "Deployment")["spec"]
    hpa = one(docs, "HorizontalPodAutoscaler")
    assert hpa["spec"]["minReplicas"] == 1
    assert hpa["spec"]["maxReplicas"] == 3
    assert hpa["spec"]["metrics"][0]["resource"]["target"] == {
        "type": "Utilization",
        "averageUtilization": 70,
    }


def test_replica_count_when_autoscaling_disabled() -> None:
    docs = render_chart(with_base(autoscaling={"enabled": False}, replicaCount=2))
    assert one(docs, "Deployment")["spec"]["replicas"] == 2
    assert not find(docs, "HorizontalPodAutoscaler")


@pytest.mark.parametrize(
    ("pdb", "expected"),
    [
        ({}, {"minAvailable": 1}),
        ({"minAvailable": "50%"}, {"minAvailable": "50%"}),
        ({"maxUnavailable": 1}, {"maxUnavailable": 1}),
    ],
    ids=["default-minAvailable", "percentage", "maxUnavailable-wins"],
)
def test_pdb_budget(pdb: dict, expected: dict) -> None:
    spec = one(render_chart(with_base(pdb=pdb)), "PodDisruptionBudget")["spec"]
    spec.pop("selector")
    assert spec == expected


def test_service_account_name_and_token() -> None:
    docs = render_chart(with_base(serviceAccount={"create": False, "name": "shared"}))
    assert not find(docs, "ServiceAccount")
    assert pod_spec(one(docs, "Deployment"))["serviceAccountName"] == "shared"
    assert pod_spec(one(docs, "Deployment"))["automountServiceAccountToken"] is False


# --------------------------------------------------------------- scheduling


def test_no_node_affinity_without_region() -> None:
    assert "affinity" not in pod_spec(deployment(BASE))


def test_region_adds_required_node_affinity() -> None:
    spec = pod_spec(deployment(with_base(placement={"region": "ma-benguerir"})))
    required = spec["affinity"]["nodeAffinity"]["requiredDuringSchedulingIgnoredDuringExecution"]
    assert required["nodeSelectorTerms"] == [
        {
            "matchExpressions": [
                {
                    "key": "topology.kubernetes.io/region",
                    "operator": "In",
                    "values": ["ma-benguerir"],
                }
            ]
        }
    ]


def test_region_is_anded_into_user_node_affinity() -> None:
    zone = {"key": "topology.kubernetes.io/zone", "operator": "In", "values": ["a"]}
    affinity = {
        "nodeAffinity": {
            "requiredDuringSchedulingIgnoredDuringExecution": {
                "nodeSelectorTerms": [{"matchExpressions": [zone]}, {"matchFields": []}]
            }
        }
    }
    values = with_base(placement={"region": "ma-benguerir"}, affinity=affinity)
    spec = pod_spec(deployment(values))
    terms = spec["affinity"]["nodeAffinity"]["requiredDuringSchedulingIgnoredDuringExecution"][
        "nodeSelectorTerms"
    ]
    assert len(terms) == 2
    for term in terms:  # every ORed term is narrowed to the region
        assert {
            "key": "topology.kubernetes.io/region",
            "operator": "In",
            "values": ["ma-benguerir"],
        } in term["matchExpressions"]
    assert zone in terms[0]["matchExpressions"]


def test_gpu_adds_limits_requests_toleration_and_node_selector() -> None:
    values = with_base(gpu={"count": 2, "type": "NVIDIA-L4"})
    spec = pod_spec(deployment(values))
    res = spec["containers"][0]["resources"]
    assert res["limits"]["nvidia.com/gpu"] == "2"
    assert res["requests"]["nvidia.com/gpu"] == "2"
    assert res["limits"]["memory"] == "512Mi"  # the rest of resources is kept
    assert {"key": "nvidia.com/gpu", "operator": "Exists", "effect": "NoSchedule"} in spec["tolerations"]
    assert spec["nodeSelector"] == {"nvidia.com/gpu.product": "NVIDIA-L4"}


def test_gpu_resource_name_and_label_are_configurable() -> None:
    values = with_base(
        gpu={
            "count": 1,
            "type": "MI300X",
            "resourceName": "amd.com/gpu",
            "typeLabel": "amd.com/gpu.product-name",
        }
    )
    spec = pod_spec(deployment(values))
    assert spec["containers"][0]["resources"]["limits"]["amd.com/gpu"] == "1"
    assert spec["tolerations"][-1]["key"] == "amd.com/gpu"
    assert spec["nodeSelector"] == {"amd.com/gpu.product-name": "MI300X"}


def test_no_gpu_by_default() -> None:
    spec = pod_spec(deployment(BASE))
    assert "nvidia.com/gpu" not in spec["containers"][0]["resources"]["limits"]
    assert "tolerations" not in spec
    assert "nodeSelector" not in spec


def test_topology_spread() -> None:
    tsc = pod_spec(deployment(BASE))["topologySpreadConstraints"]
    assert tsc[0]["topologyKey"] == "kubernetes.io/hostname"
    assert tsc[0]["whenUnsatisfiable"] == "ScheduleAnyway"
    off = pod_spec(deployment(with_base(topologySpread={"enabled": False})))
    assert "topologySpreadConstraints" not in off


# ------------------------------------------------------------ network policy


def test_network_policy_denies_by_default_and_allows_the_namespace() -> None:
    docs = render_chart(with_base(networkPolicy={"ingressNamespace": "ingress-nginx"}))
    policy = one(docs, "NetworkPolicy")["spec"]
    assert policy["policyTypes"] == ["Ingress"]
    assert len(policy["ingress"]) == 1
    rule = policy["ingress"][0]
    assert rule["from"] == [
        {"podSelector": {}},
        {"namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": "ingress-nginx"}}},
    ]
    assert rule["ports"] == [{"port": "http", "protocol": "TCP"}]


def test_network_policy_without_ingress_namespace_allows_only_the_namespace() -> None:
    rule = one(render_chart(BASE), "NetworkPolicy")["spec"]["ingress"][0]
    assert rule["from"] == [{"podSelector": {}}]


def test_network_policy_can_be_disabled() -> None:
    assert not find(render_chart(with_base(networkPolicy={"enabled": False})), "NetworkPolicy")


# ------------------------------------------------------------------ ingress


def test_ingress_from_the_ci_profile() -> None:
    docs = render_chart(ci_values("ingress"))
    ingress = one(docs, "Ingress")["spec"]
    assert ingress["ingressClassName"] == "nginx"
    assert [r["host"] for r in ingress["rules"]] == [
        "inference.example.gov.ma",
        "api.example.gov.ma",
    ]
    assert ingress["rules"][0]["http"]["paths"][0]["path"] == "/v1"
    assert ingress["rules"][1]["http"]["paths"][0] == {
        "path": "/",
        "pathType": "Prefix",
        "backend": {"service": {"name": f"{RELEASE}-inference-service", "port": {"name": "http"}}},
    }
    assert ingress["tls"][0]["secretName"] == "inference-example-tls"


def test_no_ingress_by_default() -> None:
    assert not find(render_chart(BASE), "Ingress")


# ------------------------------------------------------------------ knative


def _knative_docs() -> list[dict]:
    return render_chart(ci_values("knative"))


def test_knative_replaces_deployment_hpa_service_and_pdb() -> None:
    docs = _knative_docs()
    assert kinds(docs) == {
        ("v1", "ConfigMap"),
        ("v1", "ServiceAccount"),
        ("networking.k8s.io/v1", "NetworkPolicy"),
        (KNATIVE_API, "Service"),
    }


def test_knative_autoscaling_annotations_and_concurrency() -> None:
    ksvc = one(_knative_docs(), "Service", KNATIVE_API)
    template = ksvc["spec"]["template"]
    annotations = template["metadata"]["annotations"]
    assert annotations["autoscaling.knative.dev/min-scale"] == "0"
    assert annotations["autoscaling.knative.dev/max-scale"] == "5"
    assert annotations["autoscaling.knative.dev/target"] == "10"
    assert "checksum/config" in annotations
    assert template["spec"]["containerConcurrency"] == 20


def test_knative_uses_only_fields_knative_accepts() -> None:
    spec = one(_knative_docs(), "Service", KNATIVE_API)["spec"]["template"]["spec"]
    assert set(spec) <= KNATIVE_POD_FIELDS
    assert set(spec.get("securityContext", {})) <= KNATIVE_POD_SECURITY_FIELDS
    ctr = spec["containers"][0]
    assert set(ctr) <= KNATIVE_CONTAINER_FIELDS
    assert [p["name"] for p in ctr["ports"]] == ["http1"]
    assert "PORT" not in {e["name"] for e in ctr["env"]}  # reserved by Knative
    for probe in ("livenessProbe", "readinessProbe"):
        assert "port" not in ctr[probe]["httpGet"], probe


def test_knative_container_matches_the_deployment_container() -> None:
    ksvc_ctr = container(one(_knative_docs(), "Service", KNATIVE_API))
    dep_ctr = container(deployment(with_base(model=ci_values("knative")["model"])))
    for field in ("image", "securityContext", "resources", "volumeMounts", "envFrom"):
        assert ksvc_ctr[field] == dep_ctr[field], field
    assert ksvc_ctr["readinessProbe"]["httpGet"]["path"] == dep_ctr["readinessProbe"]["httpGet"]["path"]


def test_knative_liveness_waits_out_the_startup_budget() -> None:
    ctr = container(one(_knative_docs(), "Service", KNATIVE_API))
    # startup defaults: initialDelaySeconds 0 + periodSeconds 5 x failureThreshold 120
    assert ctr["livenessProbe"]["initialDelaySeconds"] == 600


def test_knative_network_policy_admits_the_activator() -> None:
    rule = one(_knative_docs(), "NetworkPolicy")["spec"]["ingress"][0]
    allowed = [
        f["namespaceSelector"]["matchLabels"]["kubernetes.io/metadata.name"]
        for f in rule["from"]
        if "namespaceSelector" in f
    ]
    assert allowed == ["kourier-system", "knative-serving"]
    assert "ports" not in rule  # Knative's queue-proxy listens on its own ports


def test_knative_keeps_region_and_gpu_placement() -> None:
    values = with_base(
        knative={"enabled": True}, placement={"region": "ma-benguerir"}, gpu={"count": 1, "type": "NVIDIA-L4"}
    )
    spec = pod_spec(one(render_chart(values), "Service", KNATIVE_API))
    assert "affinity" in spec and "tolerations" in spec
    assert spec["nodeSelector"] == {"nvidia.com/gpu.product": "NVIDIA-L4"}
    assert spec["containers"][0]["resources"]["limits"]["nvidia.com/gpu"] == "1"


# ------------------------------------------------------------------ failures


def test_empty_api_key_secret_fails_with_a_clear_message() -> None:
    with pytest.raises(HelmError, match=r"apiKeys\.existingSecret is required"):
        render_chart({})


@pytest.mark.parametrize(
    ("values", "message"),
    [
        (with_base(autoscaling={"minReplicas": -1}), r"minReplicas"),
        (with_base(replicaCount=-1), r"replicaCount"),
        (with_base(image={"pullPolicy": "Sometimes"}), r"pullPolicy"),
        (with_base(knative={"minScale": -1}), r"minScale"),
        (with_base(gpu={"count": "one"}), r"gpu"),
        (with_base(topologySpread={"whenUnsatisfiable": "Maybe"}), r"whenUnsatisfiable"),
        (with_base(unknownKey=True), r"unknownKey"),
        # helm 3.22 reports propertyNames errors at a wrong path; the offending name is reliable
        (with_base(env={"BAD-NAME": "x"}), r"BAD-NAME"),
    ],
    ids=[
        "negative-minReplicas",
        "negative-replicaCount",
        "pullPolicy-enum",
        "negative-minScale",
        "gpu-count-type",
        "whenUnsatisfiable-enum",
        "unknown-top-level-key",
        "env-name",
    ],
)
def test_schema_violation_fails(values: dict, message: str) -> None:
    with pytest.raises(HelmError, match=message):
        render_chart(values)


@pytest.mark.parametrize(
    ("values", "message"),
    [
        (with_base(autoscaling={"minReplicas": 4, "maxReplicas": 2}), "must not exceed"),
        (
            with_base(knative={"enabled": True}, ingress={"enabled": True, "hosts": ["a.ma"]}),
            "cannot be combined",
        ),
        (with_base(ingress={"enabled": True}), "at least one entry in ingress.hosts"),
        (with_base(pdb={"minAvailable": "", "maxUnavailable": ""}), "pdb.minAvailable or"),
    ],
    ids=["min-above-max", "ingress-with-knative", "ingress-without-hosts", "pdb-without-budget"],
)
def test_inconsistent_values_fail(values: dict, message: str) -> None:
    with pytest.raises(HelmError, match=re.escape(message)):
        render_chart(values)


# -------------------------------------------------------------------- NOTES


def test_notes_explain_port_forward_and_curl() -> None:
    notes = render_notes(BASE)
    assert f"kubectl port-forward --namespace {NAMESPACE} svc/{RELEASE}-inference-service" in notes
    assert f"kubectl get secret {SECRET}" in notes
    assert 'curl -sS http://127.0.0.1:8080/v1/models -H "Authorization: Bearer $TIZI_API_KEY"' in notes
    assert "WARNING" not in notes.replace("WARNING: pdb.minAvailable", "")


def test_notes_warn_about_rolling_tags() -> None:
    assert "rolling tag" in render_notes(with_base(image={"tag": "latest"}))
    pinned = with_base(image={"tag": "latest", "digest": "sha256:" + "b" * 64})
    assert "rolling tag" not in render_notes(pinned)


def test_notes_warn_about_gpu_without_limits() -> None:
    values = with_base(gpu={"count": 1, "type": "NVIDIA-L4"}, resources={"limits": None})
    assert "GPU(s) requested but resources.limits" in render_notes(values)
    assert "GPU(s) requested" not in render_notes(ci_values("gpu"))


def test_notes_warn_about_knative_mode() -> None:
    notes = render_notes(ci_values("knative"))
    assert "knative mode renders a Knative Service" in notes
    assert "kubernetes.podspec-securitycontext" in notes
    assert "kubectl get ksvc" in notes
