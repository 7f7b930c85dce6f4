"""The Kubernetes target: a restricted namespace, a quota, the key Secret, and the chart.

The chart in ``charts/inference-service`` is the single description of the workload;
this component only prepares what the chart expects (namespace, Secret) and passes
values computed from the spec, so a team running ``helm install`` gets the same pods.
The Knative target reuses this component with the chart's Knative mode.
"""

from __future__ import annotations

from dataclasses import dataclass

import pulumi
import pulumi_kubernetes as k8s

from components.chart_values import CHART_DIR, GPU_RESOURCE, chart_values
from components.placement import TargetPlacement
from components.secrets import key_file_name, split_keys
from components.spec import Quantity, ServiceSpec

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


@dataclass(frozen=True)
class KubernetesServiceArgs:
    """Inputs of ``KubernetesService``: the validated spec, this target's placement, the keys."""

    spec: ServiceSpec
    placement: TargetPlacement
    api_keys: pulumi.Input[str]
    knative: bool = False
    chart_path: str = str(CHART_DIR)


def quota_hard(spec: ServiceSpec) -> dict[str, str]:
    """Room for max replicas plus one surge pod during a rolling update, and no more."""
    pods = spec.scaling.max + 1
    cpu_milli = int(Quantity.cpus(spec.resources.cpu) * 1000) * pods
    memory_mib = Quantity.memory_mib(spec.resources.memory) * pods
    hard = {
        "pods": str(pods + 2),
        "requests.cpu": f"{cpu_milli}m",
        "limits.cpu": f"{cpu_milli}m",
        "requests.memory": f"{memory_mib}Mi",
        "limits.memory": f"{memory_mib}Mi",
    }
    if spec.resources.gpu_count:
        hard[f"requests.{GPU_RESOURCE}"] = str(spec.resources.gpu_count * pods)
    return hard


class KubernetesService(pulumi.ComponentResource):
    """The inference service on a Kubernetes cluster (the provider comes in through opts)."""

    namespace: pulumi.Output[str]
    """The namespace the service runs in, one per ministry and environment."""
    release_name: pulumi.Output[str]
    """The Helm release, for ``helm status`` and ``helm history``."""
    endpoint: pulumi.Output[str]
    """The in-cluster URL of the OpenAI-compatible API."""

    def __init__(self, name: str, args: KubernetesServiceArgs, opts: pulumi.ResourceOptions | None = None):
        kind = "KnativeService" if args.knative else "InferenceService"
        super().__init__(f"tizi:kubernetes:{kind}", name, None, opts)
        spec, target = args.spec, args.placement.target
        child = pulumi.ResourceOptions(parent=self)
        labels = {**spec.labels, "tizi.ma/target": target.name}

        namespace = k8s.core.v1.Namespace(
            f"{name}-namespace",
            metadata={"name": target.namespace, "labels": {**labels, **POD_SECURITY_LABELS}},
            opts=child,
        )
        in_namespace = pulumi.ResourceOptions(parent=self, depends_on=[namespace])
        k8s.core.v1.ResourceQuota(
            f"{name}-quota",
            metadata={"name": f"{spec.name}-quota", "namespace": target.namespace, "labels": labels},
            spec={"hard": quota_hard(spec)},
            opts=in_namespace,
        )
        secret_name = f"{spec.name}-api-keys"
        secret = k8s.core.v1.Secret(
            f"{name}-api-keys",
            metadata={"name": secret_name, "namespace": target.namespace, "labels": labels},
            type="Opaque",
            string_data=key_files(args.api_keys),
            opts=in_namespace,
        )
        release = k8s.helm.v3.Release(
            f"{name}-release",
            name=spec.name,
            chart=args.chart_path,
            namespace=target.namespace,
            values=chart_values(spec, target, secret_name, knative=args.knative),
            atomic=False,
            cleanup_on_fail=True,
            timeout=300,
            opts=pulumi.ResourceOptions(parent=self, depends_on=[namespace, secret]),
        )
        self.namespace = namespace.metadata.name
        self.release_name = release.name
        # the chart's Service (or Knative's) answers on port 80 at the release's name
        self.endpoint = pulumi.Output.concat(
            "http://", spec.name, ".", target.namespace, ".svc.cluster.local:80"
        )
        self.register_outputs(
            {"namespace": self.namespace, "release_name": self.release_name, "endpoint": self.endpoint}
        )
