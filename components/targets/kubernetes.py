"""The Kubernetes target: the chart's Deployment, Service, HPA, PDB and NetworkPolicy in a
restricted namespace with a quota and the key Secret (see ``targets.cluster``)."""

from __future__ import annotations

from dataclasses import dataclass

import pulumi

from components.placement import TargetPlacement
from components.spec.service import ServiceSpec
from components.targets.chart_values import CHART_DIR
from components.targets.cluster import cluster_provider, deploy_release, service_endpoint


@dataclass(frozen=True)
class KubernetesServiceArgs:
    """Inputs of ``KubernetesService``: the validated spec, this target's placement, the keys."""

    spec: ServiceSpec
    placement: TargetPlacement
    api_keys: pulumi.Input[str]
    chart_path: str = str(CHART_DIR)


class KubernetesService(pulumi.ComponentResource):
    """The inference service on a Kubernetes cluster (the provider comes in through opts)."""

    namespace: pulumi.Output[str | None]
    """The namespace the service runs in, one per ministry and environment."""
    release_name: pulumi.Output[str | None]
    """The Helm release, for ``helm status`` and ``helm history``."""
    endpoint: pulumi.Output[str]
    """The in-cluster URL of the OpenAI-compatible API."""

    def __init__(self, name: str, args: KubernetesServiceArgs, opts: pulumi.ResourceOptions | None = None):
        super().__init__("tizi:kubernetes:InferenceService", name, None, opts)
        target = args.placement.target
        made = deploy_release(self, name, args.spec, target, args.api_keys, args.chart_path)
        self.namespace = made.namespace.metadata.name
        self.release_name = made.release.name
        self.endpoint = pulumi.Output.from_input(service_endpoint(args.spec, target))
        self.register_outputs(
            {"namespace": self.namespace, "release_name": self.release_name, "endpoint": self.endpoint}
        )


def deploy(
    placement: TargetPlacement, spec: ServiceSpec, api_keys: pulumi.Input[str], key_count: int
) -> KubernetesService:
    """The component for one Kubernetes target, with a provider for its kubeconfig context."""
    return KubernetesService(
        placement.target.name,
        KubernetesServiceArgs(spec=spec, placement=placement, api_keys=api_keys),
        opts=cluster_provider(placement.target),
    )
