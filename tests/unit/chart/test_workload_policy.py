"""Security and operability policy, checked on every workload (Deployment or
Knative Service) that every ci profile renders; ids are `profile:Kind/name`."""

from __future__ import annotations

from typing import Any

import pytest

from .render import (
    CI_PROFILES,
    HELM,
    KNATIVE_API,
    HelmError,
    ci_values,
    container,
    find,
    pod_spec,
    render_chart,
    require_helm,
    serving_container,
)

pytestmark = pytest.mark.unit


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
    ctr = container(w) if w["kind"] == "Deployment" else serving_container(w)
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
