"""The chart installed by `helm install` alone, in a fresh restricted namespace holding the key
Secret it expects: what the gateway and HPA tests start from."""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import yaml

from components.targets.chart_values import CHART_DIR
from tests.engine_support import run

from .test_chart_alone import tizi_values


@contextmanager
def chart_alone(
    kube_context: str, namespace: str, keys: list[str], values: dict[str, Any], work: Path
) -> Iterator[None]:
    """The kind stack's values with ``values`` on top, installed and ready; removed afterwards."""
    # a namespace left terminating by an earlier run would refuse the Secret
    run("kubectl", "--context", kube_context, "delete", "namespace", namespace,
        "--ignore-not-found", "--wait=true", "--timeout=120s", check=False)  # fmt: skip
    documents = [
        {"apiVersion": "v1", "kind": "Namespace",
         "metadata": {"name": namespace, "labels": {"pod-security.kubernetes.io/enforce": "restricted"}}},
        {"apiVersion": "v1", "kind": "Secret", "stringData": {f"key-{i}": k for i, k in enumerate(keys)},
         "metadata": {"name": "inference-api-keys", "namespace": namespace}},
    ]  # fmt: skip
    for document in documents:
        run("kubectl", "--context", kube_context, "apply", "-f", "-", input=json.dumps(document))
    path = work / "values.yaml"
    path.write_text(yaml.safe_dump({**yaml.safe_load(tizi_values("kind")), **values}))
    installed = run(
        "helm", "--kube-context", kube_context, "install", "inference", str(CHART_DIR), "-n", namespace,
        "-f", str(path), "--wait", "--timeout", "180s", check=False,
    )  # fmt: skip
    assert installed.returncode == 0, installed.stderr
    try:
        yield
    finally:
        run("helm", "--kube-context", kube_context, "uninstall", "inference", "-n", namespace, check=False)
        run(
            "kubectl",
            "--context",
            kube_context,
            "delete",
            "namespace",
            namespace,
            "--wait=false",
            check=False,
        )
