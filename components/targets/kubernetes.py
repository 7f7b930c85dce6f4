"""The Kubernetes target: the chart's Deployment, Service, HPA, PDB and NetworkPolicy in a
restricted namespace with a quota and the key Secret (see ``targets.cluster``)."""

from __future__ import annotations

import pulumi

from components.placement import TargetPlacement
from components.spec.service import ServiceSpec
from components.targets.cluster import ClusterService, ClusterServiceArgs, deploy_cluster_service


class KubernetesService(ClusterService):
    """The inference service on a Kubernetes cluster (the provider comes in through opts)."""

    def __init__(self, name: str, args: ClusterServiceArgs, opts: pulumi.ResourceOptions | None = None):
        super().__init__("tizi:kubernetes:InferenceService", name, args, opts)


def deploy(
    placement: TargetPlacement, spec: ServiceSpec, api_keys: pulumi.Input[str], key_count: int
) -> ClusterService:
    """The component for one Kubernetes target."""
    return deploy_cluster_service(KubernetesService, placement, spec, api_keys)
