"""One place the service runs, as the spec describes it (read by ``spec.targets``)."""

from __future__ import annotations

from dataclasses import dataclass

from components.rules.catalogue import TargetKind


@dataclass(frozen=True)
class Target:
    """Where one copy of the service runs.  Fields unused by a kind stay empty.

    ``region`` is the placement this target is judged on: the stack region for
    Kubernetes and Knative, the Koyeb region, or the edge site.
    """

    kind: TargetKind
    name: str
    region: str
    context: str = ""
    namespace: str = ""
    ingress_namespace: str = ""
    #: Knative only: the cluster's Knative allows init containers (its config-features flag
    #: kubernetes.podspec-init-containers), which a model image needs to deliver the weights
    init_containers: bool = False
    host: str = ""
    host_port: int = 0
    #: where the edge gateway publishes /metrics, on the Docker host's loopback only
    metrics_port: int = 0
    bind_address: str = "0.0.0.0"
    image_pull: str = "missing"
    instance_type: str = "nano"
