"""The Knative target: the chart in its Knative mode (a Knative Service that can scale to
zero), in a restricted namespace with a quota and the key Secret (see ``targets.cluster``).

Its own type token keeps its URNs apart from the Kubernetes target's; the alias keeps
stacks deployed when both shared one component class from being replaced.
"""

from __future__ import annotations

from dataclasses import dataclass

import pulumi

from components.placement import TargetPlacement
from components.spec.service import ServiceSpec
from components.targets.chart_values import CHART_DIR
from components.targets.cluster import cluster_provider, deploy_release, service_endpoint

#: the type token this component had while it shared the Kubernetes component's class
_FORMER_TYPE = "tizi:kubernetes:KnativeService"


@dataclass(frozen=True)
class KnativeServiceArgs:
    """Inputs of ``KnativeService``: the validated spec, this target's placement, the keys."""

    spec: ServiceSpec
    placement: TargetPlacement
    api_keys: pulumi.Input[str]
    chart_path: str = str(CHART_DIR)


class KnativeService(pulumi.ComponentResource):
    """The inference service as a Knative Service (the provider comes in through opts)."""

    namespace: pulumi.Output[str | None]
    """The namespace the service runs in, one per ministry and environment."""
    release_name: pulumi.Output[str | None]
    """The Helm release, for ``helm status`` and ``helm history``."""
    endpoint: pulumi.Output[str]
    """The in-cluster URL of the OpenAI-compatible API."""

    def __init__(self, name: str, args: KnativeServiceArgs, opts: pulumi.ResourceOptions | None = None):
        aliases = pulumi.ResourceOptions(aliases=[pulumi.Alias(type_=_FORMER_TYPE)])
        super().__init__(
            "tizi:knative:KnativeService", name, None, pulumi.ResourceOptions.merge(aliases, opts)
        )
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
) -> KnativeService:
    """The component for one Knative target, with a provider for its kubeconfig context."""
    return KnativeService(
        placement.target.name,
        KnativeServiceArgs(spec=spec, placement=placement, api_keys=api_keys),
        opts=cluster_provider(placement.target),
    )
