"""Shared helpers for the chart tests: render charts/inference-service with the
real `helm template`, pick documents out of the result, and validate them.

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
import shutil
import subprocess
import tempfile
from pathlib import Path
from typing import Any

import pytest
import yaml
from kubernetes.client import ApiClient

REPO = Path(__file__).resolve().parents[3]
CHART = REPO / "charts" / "inference-service"
CI_DIR = CHART / "ci"
KUBE_VERSION = "1.31.0"
RELEASE = "tizi"
NAMESPACE = "tizi-test"
SECRET = "tizi-api-keys"
# Smallest values that render: the API-key Secret is the only required value.
BASE: dict[str, Any] = {"apiKeys": {"existingSecret": SECRET}}

CI_PROFILES = sorted(p.name.removesuffix("-values.yaml") for p in CI_DIR.glob("*-values.yaml"))

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


def lint_chart(values: dict[str, Any]) -> str:
    """`helm lint --strict` of the chart with `values`; returns helm's report.

    Raises HelmError with helm's stderr when linting fails.
    """
    return _run_helm(["lint", str(CHART), "--strict", "--kube-version", KUBE_VERSION], values)


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
    """The payload container (always the first)."""
    return pod_spec(workload)["containers"][0]


def serving_container(workload: dict) -> dict:
    """The container traffic reaches: the gateway when enabled (Knative's single port)."""
    containers = pod_spec(workload)["containers"]
    return next(c for c in containers if c["name"] == "gateway") if len(containers) > 1 else containers[0]


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
