"""The Kubernetes target for real: `pulumi up` of the kind stack on a real API server and kubelet."""

from __future__ import annotations

import base64
import json
import time

import pytest
import testinfra
from kubernetes.utils import parse_quantity

from tests.engine_support import http_status, raw_state, run, steady_client, wait_for

from .conftest import NAMESPACE, SERVICE


def deployment_ready(core) -> bool:
    deployment = core.AppsV1Api().read_namespaced_deployment(SERVICE, NAMESPACE)
    status = deployment.status
    return bool(status.ready_replicas) and status.updated_replicas == status.replicas == status.ready_replicas


def service_url(core) -> str:
    ip = core.CoreV1Api().read_namespaced_service(SERVICE, NAMESPACE).spec.cluster_ip
    return f"http://{ip}"


def api_keys(core) -> list[str]:
    secret = core.CoreV1Api().read_namespaced_secret(f"{SERVICE}-api-keys", NAMESPACE)
    return [base64.b64decode(v).decode() for _, v in sorted(secret.data.items())]


def running_pods(core) -> list:
    pods = core.CoreV1Api().list_namespaced_pod(
        NAMESPACE, label_selector="app.kubernetes.io/instance=inference"
    )
    return [p for p in pods.items if p.status.phase == "Running" and not p.metadata.deletion_timestamp]


def test_up_exports_the_placement_and_endpoint(kind_stack):
    assert kind_stack.outputs["placement"]["cluster"]["rule"] == "RES-PERSONAL"
    assert kind_stack.outputs["endpoints"]["cluster"] == "http://inference.tests-dev.svc.cluster.local:80"


def test_namespace_enforces_restricted_and_the_deployment_becomes_ready(kind_stack, core):
    labels = core.CoreV1Api().read_namespace(NAMESPACE).metadata.labels
    assert labels["pod-security.kubernetes.io/enforce"] == "restricted"
    assert labels["tizi.ma/data-class"] == "personal"
    assert wait_for(lambda: deployment_ready(core), timeout=180), "the Deployment never became Ready"


def test_service_answers_with_a_key_from_the_secret(kind_stack, core):
    assert wait_for(lambda: deployment_ready(core), timeout=180)
    url = service_url(core)
    keys = api_keys(core)
    assert len(keys) == 2
    assert http_status(f"{url}/v1/models") == 401
    for key in keys:
        assert http_status(f"{url}/v1/models", key) == 200


def test_restricted_namespace_refuses_a_privileged_pod(kind_stack, kube_context):
    pod = {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": "root-probe", "namespace": NAMESPACE},
        "spec": {
            "containers": [
                {
                    "name": "p",
                    "image": "tizi/inference-service:0.1.0",
                    "securityContext": {"privileged": True},
                }
            ]
        },
    }
    result = run("kubectl", "--context", kube_context, "apply", "-f", "-", input=json.dumps(pod), check=False)
    assert result.returncode != 0 and 'violates PodSecurity "restricted' in result.stderr


def test_pod_runs_as_non_root_with_a_read_only_root(kind_stack, core, kube_context):
    assert wait_for(lambda: deployment_ready(core), timeout=180)
    pod = running_pods(core)[0]
    container = pod.spec.containers[0].name
    host = testinfra.get_host(
        f"kubectl://{pod.metadata.name}?namespace={NAMESPACE}&container={container}&context={kube_context}"
    )
    assert host.user().uid == 10001
    assert host.process.filter(comm="python3"), "the service process runs"
    assert host.run("touch /should-fail").rc != 0, "the root filesystem is read-only"
    assert host.run("touch /tmp/ok").rc == 0, "/tmp is writable"
    assert host.file("/run/secrets/tizi").is_directory


def test_hpa_pdb_and_network_policy_follow_the_spec(kind_stack, core):
    hpa = core.AutoscalingV2Api().read_namespaced_horizontal_pod_autoscaler(SERVICE, NAMESPACE)
    assert (hpa.spec.min_replicas, hpa.spec.max_replicas) == (2, 3)
    pdb = core.PolicyV1Api().read_namespaced_pod_disruption_budget(SERVICE, NAMESPACE)
    assert pdb.spec.min_available == 1
    policy = core.NetworkingV1Api().read_namespaced_network_policy(SERVICE, NAMESPACE)
    assert policy.spec.policy_types == ["Ingress"]
    quota = core.CoreV1Api().read_namespaced_resource_quota(f"{SERVICE}-quota", NAMESPACE)
    # 4 pods (3 + 1 surge) of 256Mi payload + 128Mi gateway
    assert parse_quantity(quota.spec.hard["limits.memory"]) == parse_quantity("1536Mi")


def test_second_up_changes_nothing(kind_stack):
    result = kind_stack.stack.up()
    changes = result.summary.resource_changes
    assert set(changes) == {"same"}, changes


def test_rolling_update_under_load_loses_no_request(kind_stack, core):
    assert wait_for(lambda: deployment_ready(core), timeout=180)
    url, key = service_url(core), api_keys(core)[0]
    from tests.engine_support import edit_stack

    edit_stack(
        kind_stack.work_dir,
        "kind",
        lambda c: c["tizi:service"].setdefault("env", {}).update(TIZI_ROLL_MARKER=str(time.time())),
    )
    before = {p.metadata.name for p in running_pods(core)}
    with steady_client(f"{url}/v1/models", key) as loop:
        kind_stack.stack.up()
        assert wait_for(
            lambda: deployment_ready(core) and not before & {p.metadata.name for p in running_pods(core)},
            timeout=240,
        )
        time.sleep(2)
    assert len(loop.statuses) > 20
    assert loop.failures == [], f"{len(loop.failures)} failed of {len(loop.statuses)}: {loop.failures[:10]}"


def test_deleting_a_pod_under_load_recovers(kind_stack, core):
    assert wait_for(lambda: deployment_ready(core), timeout=180)
    url, key = service_url(core), api_keys(core)[0]
    victim = running_pods(core)[0].metadata.name
    with steady_client(f"{url}/v1/models", key) as loop:
        core.CoreV1Api().delete_namespaced_pod(victim, NAMESPACE)
        assert wait_for(
            lambda: deployment_ready(core) and victim not in {p.metadata.name for p in running_pods(core)},
            timeout=180,
        )
        assert wait_for(lambda: http_status(f"{url}/v1/models", key) == 200, timeout=30)
    assert loop.statuses[-1] == 200
    # SIGTERM drains: with the readiness gate, only requests racing the endpoint update may fail
    assert len(loop.failures) <= max(3, len(loop.statuses) // 20), loop.failures


@pytest.mark.parametrize("plaintext_source", ["outputs", "state"])
def test_no_plaintext_key_in_outputs_or_state(kind_stack, core, plaintext_source):
    keys = api_keys(core)
    if plaintext_source == "outputs":
        text = json.dumps(kind_stack.outputs) + kind_stack.up_stdout
    else:
        text = raw_state(kind_stack.state_dir, "kind")
    assert not [k for k in keys if k in text]


def test_destroy_removes_the_namespace(kind_stack, core):
    """Runs last in this file: the session fixture's own destroy is then a no-op."""
    from kubernetes.client.exceptions import ApiException

    kind_stack.stack.destroy()

    def gone() -> bool:
        try:
            core.CoreV1Api().read_namespace(NAMESPACE)
        except ApiException as error:
            return error.status == 404
        return False

    assert wait_for(gone, timeout=120), "the namespace outlived pulumi destroy"
