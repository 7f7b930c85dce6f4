"""What the Kubernetes and Knative targets share: a restricted namespace, a quota, the key
Secret, and the Helm release of ``charts/inference-service``.

The chart is the single description of the workload; these resources only prepare what
the chart expects and pass values computed from the spec, so a team running
``helm install`` gets the same pods.  Both components call ``deploy_release`` with
themselves as parent, so each kind keeps its own type token and URNs.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import pulumi
import pulumi_kubernetes as k8s

from components.placement import TargetPlacement
from components.rules.catalogue import TargetKind
from components.spec.labels import TARGET_LABEL
from components.spec.secrets import key_file_name, split_keys
from components.spec.service import Quantity, ServiceSpec
from components.spec.target import Target
from components.targets.chart_values import CHART_DIR, GPU_RESOURCE, chart_values
from components.targets.gateway_plan import GATEWAY_RESOURCES, QUEUE_PROXY_RESOURCES

#: Pod Security Admission labels: "restricted" enforced, audited and warned.
POD_SECURITY_LABELS = {
    "pod-security.kubernetes.io/enforce": "restricted",
    "pod-security.kubernetes.io/enforce-version": "latest",
    "pod-security.kubernetes.io/audit": "restricted",
    "pod-security.kubernetes.io/warn": "restricted",
}


def key_files(api_keys: pulumi.Input[str]) -> pulumi.Output[dict[str, str]]:
    """Secret data: one file per key, so the service can read several valid keys at once."""
    return pulumi.Output.secret(api_keys).apply(
        lambda raw: {key_file_name(i): key for i, key in enumerate(split_keys(raw))}
    )


def quota_hard(spec: ServiceSpec, knative: bool = False) -> dict[str, str]:
    """Room for max replicas plus one surge pod during a rolling update, and no more.

    Each pod is the payload (requests = limits = the spec's resources), the gateway sidecar
    (``GATEWAY_RESOURCES``) and, under Knative, its queue-proxy (``QUEUE_PROXY_RESOURCES``).
    """
    sidecars = [GATEWAY_RESOURCES, *([QUEUE_PROXY_RESOURCES] if knative else [])]
    pods = spec.scaling.max + 1
    payload_cpu = int(Quantity.cpus(spec.resources.cpu) * 1000)
    payload_mib = Quantity.memory_mib(spec.resources.memory)

    def total(kind: str) -> tuple[str, str]:
        cpu = payload_cpu + sum(int(Quantity.cpus(r[kind]["cpu"]) * 1000) for r in sidecars)
        mib = payload_mib + sum(Quantity.memory_mib(r[kind]["memory"]) for r in sidecars)
        return f"{cpu * pods}m", f"{mib * pods}Mi"

    requests_cpu, requests_memory = total("requests")
    limits_cpu, limits_memory = total("limits")
    hard = {
        "pods": str(pods + 2),
        "requests.cpu": requests_cpu,
        "limits.cpu": limits_cpu,
        "requests.memory": requests_memory,
        "limits.memory": limits_memory,
    }
    if spec.resources.gpu_count:
        hard[f"requests.{GPU_RESOURCE}"] = str(spec.resources.gpu_count * pods)
    return hard


def service_endpoint(spec: ServiceSpec, target: Target) -> str:
    """The in-cluster URL: the chart's Service (or Knative's) answers on port 80 at the release's name."""
    return f"http://{spec.name}.{target.namespace}.svc.cluster.local:80"


@dataclass(frozen=True)
class ClusterRelease:
    """The resources of one cluster target, for the component's outputs."""

    namespace: k8s.core.v1.Namespace
    release: k8s.helm.v3.Release


def deploy_release(
    parent: pulumi.ComponentResource,
    name: str,
    spec: ServiceSpec,
    target: Target,
    api_keys: pulumi.Input[str],
    chart_path: str = str(CHART_DIR),
) -> ClusterRelease:
    """Namespace, quota, key Secret and chart release of ``target``, children of ``parent``."""
    child = pulumi.ResourceOptions(parent=parent)
    labels = {**spec.labels, TARGET_LABEL: target.name}
    namespace = k8s.core.v1.Namespace(
        f"{name}-namespace",
        metadata={"name": target.namespace, "labels": {**labels, **POD_SECURITY_LABELS}},
        opts=child,
    )
    in_namespace = pulumi.ResourceOptions(parent=parent, depends_on=[namespace])
    k8s.core.v1.ResourceQuota(
        f"{name}-quota",
        metadata={"name": f"{spec.name}-quota", "namespace": target.namespace, "labels": labels},
        spec={"hard": quota_hard(spec, knative=target.kind is TargetKind.KNATIVE)},
        opts=in_namespace,
    )
    secret = k8s.core.v1.Secret(
        f"{name}-api-keys",
        metadata={"name": spec.api_key_secret, "namespace": target.namespace, "labels": labels},
        type="Opaque",
        string_data=key_files(api_keys),
        opts=in_namespace,
    )
    release = k8s.helm.v3.Release(
        f"{name}-release",
        name=spec.name,
        chart=chart_path,
        namespace=target.namespace,
        values=chart_values(spec, target),
        atomic=False,
        cleanup_on_fail=True,
        timeout=300,
        opts=pulumi.ResourceOptions(parent=parent, depends_on=[namespace, secret]),
    )
    return ClusterRelease(namespace=namespace, release=release)


@dataclass(frozen=True)
class ClusterServiceArgs:
    """Inputs of a cluster component: the validated spec, this target's placement, the keys."""

    spec: ServiceSpec
    placement: TargetPlacement
    api_keys: pulumi.Input[str]
    chart_path: str = str(CHART_DIR)


class ClusterService(pulumi.ComponentResource):
    """The chart's release and what it expects, under the type token of a cluster kind."""

    namespace: pulumi.Output[str | None]
    """The namespace the service runs in, one per ministry and environment."""
    release_name: pulumi.Output[str | None]
    """The Helm release, for ``helm status`` and ``helm history``."""
    endpoint: pulumi.Output[str]
    """The in-cluster URL of the OpenAI-compatible API."""

    def __init__(
        self, type_token: str, name: str, args: ClusterServiceArgs, opts: pulumi.ResourceOptions | None = None
    ):
        super().__init__(type_token, name, None, opts)
        target = args.placement.target
        made = deploy_release(self, name, args.spec, target, args.api_keys, args.chart_path)
        self.namespace = made.namespace.metadata.name
        self.release_name = made.release.name
        self.endpoint = pulumi.Output.from_input(service_endpoint(args.spec, target))
        self.register_outputs(
            {"namespace": self.namespace, "release_name": self.release_name, "endpoint": self.endpoint}
        )


def deploy_cluster_service(
    component: Callable[[str, ClusterServiceArgs, pulumi.ResourceOptions], ClusterService],
    placement: TargetPlacement,
    spec: ServiceSpec,
    api_keys: pulumi.Input[str],
) -> ClusterService:
    """One cluster target's component, with a provider for its kubeconfig context (made here,
    in the deploy step, never by the component)."""
    target = placement.target
    provider = k8s.Provider(f"{target.name}-cluster", context=target.context or None)
    return component(
        target.name,
        ClusterServiceArgs(spec=spec, placement=placement, api_keys=api_keys),
        pulumi.ResourceOptions(providers={"kubernetes": provider}),
    )
