"""The kind cluster itself: kind's CLI knows it, and tizi's offline node image does its job.

These checks run only when `scripts/cluster.sh start` made a kind cluster (the default,
TIZI_CLUSTER=kind). With TIZI_CLUSTER=parts they skip and say so, because that setting
selects the other cluster. The rest of the tier runs unchanged on either cluster.

What the node image must do beyond the tier's own tests (scripts/kind/README.md):
- the node's bridge CNI hands out pod addresses from the node's pod CIDR;
- CoreDNS, built from Go modules, answers for cluster names;
- the default StorageClass (local-path, built from Go modules) provisions a volume.
"""

from __future__ import annotations

import os
import time
import uuid
from ipaddress import ip_address, ip_network
from pathlib import Path

import pytest

from tests.engine_support import run

CACHE = Path(os.environ.get("TIZI_CACHE", Path.home() / ".cache" / "tizi"))
KIND = CACHE / "kind" / "bin" / "kind"
NODE = "tizi-control-plane"
#: an image the node image pre-imports, with a shell and getent (Debian)
PROBE_IMAGE = "dev.local/local-path-helper:v0.0.30"


@pytest.fixture(scope="module")
def kind_cluster(kube_context) -> str:
    flavour_file = CACHE / "cluster-flavour"
    flavour = flavour_file.read_text().strip() if flavour_file.exists() else "parts"
    if flavour != "kind":
        pytest.skip(
            f"the cluster is the {flavour} cluster (TIZI_CLUSTER={flavour}): kind's own checks do not apply"
        )
    assert KIND.exists(), f"{KIND} missing although scripts/cluster.sh started kind"
    return kube_context


@pytest.fixture
def probe_namespace(kind_cluster, core):
    name = f"kind-probe-{uuid.uuid4().hex[:8]}"
    api = core.CoreV1Api()
    api.create_namespace(core.V1Namespace(metadata=core.V1ObjectMeta(name=name)))
    yield name
    api.delete_namespace(name)


def _run_pod(core, namespace: str, name: str, command: list[str], volumes: dict | None = None) -> str:
    """Run one pod to completion on the node and return its log."""
    api = core.CoreV1Api()
    container = {
        "name": "probe",
        "image": PROBE_IMAGE,
        "imagePullPolicy": "Never",
        "command": command,
        "securityContext": {
            "runAsNonRoot": True,
            "runAsUser": 10001,
            "allowPrivilegeEscalation": False,
            "capabilities": {"drop": ["ALL"]},
            "seccompProfile": {"type": "RuntimeDefault"},
        },
    }
    spec: dict = {"restartPolicy": "Never", "containers": [container]}
    if volumes:
        container["volumeMounts"] = [{"name": "data", "mountPath": "/data"}]
        spec["volumes"] = [{"name": "data", **volumes}]
        spec["securityContext"] = {"fsGroup": 10001}
    api.create_namespaced_pod(
        namespace, {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": name}, "spec": spec}
    )
    deadline = time.monotonic() + 120
    phase = ""
    while time.monotonic() < deadline:
        phase = api.read_namespaced_pod(name, namespace).status.phase
        if phase in ("Succeeded", "Failed"):
            break
        time.sleep(1)
    log = api.read_namespaced_pod_log(name, namespace)
    assert phase == "Succeeded", f"pod {name} ended {phase or 'never'}: {log[-500:]}"
    return log


def test_kind_lists_the_cluster_and_its_node_runs_tizis_image(kind_cluster, core):
    clusters = run(str(KIND), "get", "clusters").stdout.split()
    assert "tizi" in clusters
    nodes = run(str(KIND), "get", "nodes", "--name", "tizi").stdout.split()
    assert nodes == [NODE]
    image = run("docker", "inspect", "-f", "{{.Config.Image}}", NODE).stdout.strip()
    assert image.startswith("tizi/kind-node:v1.34.4-"), image
    node = core.CoreV1Api().read_node(NODE)
    assert node.metadata.labels["topology.kubernetes.io/region"] == "ma-benguerir"
    assert node.status.node_info.kubelet_version == "v1.34.4"
    assert node.status.node_info.container_runtime_version.startswith("containerd://")
    assert node.spec.provider_id == "kind://docker/tizi/tizi-control-plane"


def test_bridge_cni_gives_pods_addresses_from_the_node_pod_cidr(kind_cluster, core, probe_namespace):
    node = core.CoreV1Api().read_node(NODE)
    cidr = ip_network(node.spec.pod_cidr)
    _run_pod(core, probe_namespace, "addr", ["sh", "-c", "true"])
    pod = core.CoreV1Api().read_namespaced_pod("addr", probe_namespace)
    assert ip_address(pod.status.pod_ip) in cidr, (pod.status.pod_ip, str(cidr))
    conf = run("docker", "exec", NODE, "cat", "/etc/cni/net.d/10-tizi-bridge.conflist").stdout
    assert f'"subnet": "{cidr}"' in conf


def test_coredns_answers_for_cluster_names(kind_cluster, core, probe_namespace):
    log = _run_pod(core, probe_namespace, "dns", ["getent", "hosts", "kubernetes.default.svc.cluster.local"])
    kubernetes_ip = core.CoreV1Api().read_namespaced_service("kubernetes", "default").spec.cluster_ip
    assert log.split()[0] == kubernetes_ip, log


def test_default_storage_class_provisions_a_local_path_volume(kind_cluster, core, probe_namespace):
    api = core.CoreV1Api()
    classes = core.StorageV1Api().list_storage_class().items
    default = [
        c.metadata.name
        for c in classes
        if (c.metadata.annotations or {}).get("storageclass.kubernetes.io/is-default-class") == "true"
    ]
    assert default == ["standard"]
    claim = {
        "apiVersion": "v1",
        "kind": "PersistentVolumeClaim",
        "metadata": {"name": "data"},
        "spec": {"accessModes": ["ReadWriteOnce"], "resources": {"requests": {"storage": "16Mi"}}},
    }
    api.create_namespaced_persistent_volume_claim(probe_namespace, claim)
    log = _run_pod(
        core,
        probe_namespace,
        "writer",
        ["sh", "-c", "echo tizi > /data/probe && cat /data/probe"],
        volumes={"persistentVolumeClaim": {"claimName": "data"}},
    )
    assert log.strip() == "tizi"
    bound = api.read_namespaced_persistent_volume_claim("data", probe_namespace)
    assert bound.status.phase == "Bound"
    volume = core.CoreV1Api().read_persistent_volume(bound.spec.volume_name)
    assert volume.spec.storage_class_name == "standard"
    assert volume.metadata.annotations["pv.kubernetes.io/provisioned-by"] == "rancher.io/local-path"
