"""The Knative target: the chart in its Knative mode (a Knative Service that can scale to
zero), in a restricted namespace with a quota and the key Secret (see ``targets.cluster``).

Its own type token keeps its URNs apart from the Kubernetes target's; the alias keeps
stacks deployed when both shared one component class from being replaced.
"""

from __future__ import annotations

import pulumi

from components.placement import TargetPlacement
from components.spec.service import ServiceSpec
from components.targets.cluster import ClusterService, ClusterServiceArgs, deploy_cluster_service

#: the type token this component had while it shared the Kubernetes component's class
_FORMER_TYPE = "tizi:kubernetes:KnativeService"


class KnativeService(ClusterService):
    """The inference service as a Knative Service (the provider comes in through opts)."""

    def __init__(self, name: str, args: ClusterServiceArgs, opts: pulumi.ResourceOptions | None = None):
        with_alias = pulumi.ResourceOptions.merge(
            pulumi.ResourceOptions(aliases=[pulumi.Alias(type_=_FORMER_TYPE)]), opts
        )
        super().__init__("tizi:knative:KnativeService", name, args, with_alias)


def deploy(
    placement: TargetPlacement, spec: ServiceSpec, api_keys: pulumi.Input[str], key_count: int
) -> ClusterService:
    """The component for one Knative target."""
    return deploy_cluster_service(KnativeService, placement, spec, api_keys)
