"""The chart without Pulumi: lint, template, `helm install --wait` on the same cluster, Knative dry-run."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest
import yaml

from components.targets.chart_values import CHART_DIR
from tests.conftest import REPO
from tests.engine_support import helm_prerequisites, http_status, run, wait_for

NAMESPACE = "tizi-helm-only"


def tizi_values(stack: str) -> str:
    return run(
        str(REPO / ".venv" / "bin" / "tizi"), "values", str(REPO / "stacks" / f"Pulumi.{stack}.yaml")
    ).stdout


@pytest.fixture
def helm_namespace(kube_context, core):
    """A restricted namespace holding the key Secret the chart expects, removed afterwards."""
    for document in helm_prerequisites(NAMESPACE, "helm-only-key-0123456789abcdef"):
        run("kubectl", "--context", kube_context, "apply", "-f", "-", input=json.dumps(document))
    yield NAMESPACE
    run("helm", "--kube-context", kube_context, "uninstall", "inference", "-n", NAMESPACE, check=False)
    run("kubectl", "--context", kube_context, "delete", "namespace", NAMESPACE, "--wait=false", check=False)


def test_helm_lint_is_clean_for_every_ci_profile():
    for values in sorted((CHART_DIR / "ci").glob("*-values.yaml")):
        result = run("helm", "lint", "--strict", str(CHART_DIR), "-f", str(values), check=False)
        assert result.returncode == 0, result.stdout + result.stderr


def test_helm_install_alone_works_on_the_cluster(helm_namespace, kube_context, core, tmp_path):
    values = tmp_path / "values.yaml"
    values.write_text(tizi_values("kind"))
    result = run(
        "helm",
        "--kube-context",
        kube_context,
        "install",
        "inference",
        str(CHART_DIR),
        "-n",
        helm_namespace,
        "-f",
        str(values),
        "--wait",
        "--timeout",
        "180s",
        check=False,
    )
    assert result.returncode == 0, result.stderr
    assert "kubectl port-forward" in result.stdout, "NOTES.txt tells how to reach the service"
    ip = core.CoreV1Api().read_namespaced_service("inference", helm_namespace).spec.cluster_ip
    assert wait_for(
        lambda: http_status(f"http://{ip}/v1/models", "helm-only-key-0123456789abcdef") == 200, 60
    )
    assert http_status(f"http://{ip}/v1/models") == 401


def test_knative_service_is_accepted_by_the_api_server(kube_context, tmp_path):
    crd = run("kubectl", "--context", kube_context, "get", "crd", "services.serving.knative.dev", check=False)
    if crd.returncode != 0:
        run(str(REPO / "scripts" / "cluster.sh"), "knative-crds")
    values = tmp_path / "values.yaml"
    values.write_text(yaml.safe_dump({**yaml.safe_load(tizi_values("kind")), "knative": {"enabled": True}}))
    rendered = run("helm", "template", "inference", str(CHART_DIR), "-n", "default", "-f", str(values)).stdout
    documents = [d for d in yaml.safe_load_all(rendered) if d]
    knative = [
        d for d in documents if d["kind"] == "Service" and d["apiVersion"].startswith("serving.knative.dev")
    ]
    assert len(knative) == 1
    applied = subprocess.run(
        ["kubectl", "--context", kube_context, "apply", "--dry-run=server", "-n", "default", "-f", "-"],
        input=yaml.safe_dump(knative[0]),
        capture_output=True,
        text=True,
    )
    assert applied.returncode == 0, applied.stderr
    assert "created (server dry run)" in applied.stdout or "configured (server dry run)" in applied.stdout


def test_chart_directory_is_the_one_the_component_deploys():
    assert Path(CHART_DIR) == REPO / "charts" / "inference-service"
