"""Helm values for ``charts/inference-service`` computed from the spec.

Pure data, no Pulumi: the Kubernetes and Knative targets pass exactly this to the
chart, tests compare it with the spec, and teams without Pulumi can print it
(``tizi values``) and ``helm install -f`` it.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

from components.rules.catalogue import TargetKind
from components.spec.service import ServiceSpec
from components.spec.target import Target
from components.targets.gateway_plan import GATEWAY_RESOURCES, QUEUE_PROXY_RESOURCES

CHART_DIR = Path(__file__).resolve().parents[2] / "charts" / "inference-service"
GPU_RESOURCE = "nvidia.com/gpu"
#: The startup probe's period. The kubelet runs the readiness probe as soon as the startup
#: probe passes, so this period is the step in which a new pod becomes Ready: at 5 s a pod
#: that listens after 0.5 s was Ready after 6-7 s, at 1 s after about 2 s (every rollout,
#: scale-out and recovery waits for it). The probe stops once it has passed; the load budget
#: is kept by the failure threshold.
STARTUP_PERIOD_SECONDS = 1
GPU_TYPE_LABEL = "nvidia.com/gpu.product"


def chart_values(spec: ServiceSpec, target: Target, api_key_secret: str | None = None) -> dict[str, Any]:
    """The chart's values for one Kubernetes or Knative target of the spec.

    The chart's Knative mode follows the target's kind; the keys come from
    ``api_key_secret`` (default: the Secret the Kubernetes components write).
    """
    knative = target.kind is TargetKind.KNATIVE
    limits: dict[str, Any] = {"cpu": spec.resources.cpu, "memory": spec.resources.memory}
    return {
        "fullnameOverride": spec.name,
        "commonLabels": dict(spec.labels),
        "image": {
            "repository": spec.image_repository,
            "tag": spec.image_tag,
            "digest": spec.image_digest,
            "pullPolicy": "IfNotPresent",
        },
        "command": list(spec.command),
        "args": list(spec.args),
        "containerPort": spec.port,
        "model": {
            "name": spec.model.name,
            "source": spec.model.source,
            "languages": list(spec.model.languages),
            "image": spec.model.image,
        },
        "env": spec.container_env,
        "apiKeys": {"existingSecret": api_key_secret or spec.api_key_secret},
        # TLS ends at the cluster's ingress; the gateway checks keys, limits and counts
        "gateway": {
            "enabled": True,
            "requestsPerMinute": spec.gateway.requests_per_minute,
            "burst": spec.gateway.burst,
            "resources": GATEWAY_RESOURCES,
        },
        "replicaCount": max(spec.scaling.min, 1),
        "autoscaling": {
            "enabled": not knative and spec.scaling.max > spec.scaling.min,
            "minReplicas": max(spec.scaling.min, 1),
            "maxReplicas": spec.scaling.max,
        },
        "knative": {
            "enabled": knative,
            "minScale": spec.scaling.min,
            "maxScale": spec.scaling.max,
            "target": spec.scaling.target_concurrency,
            "initContainers": target.init_containers,
            "queueProxy": {"resources": QUEUE_PROXY_RESOURCES},
        },
        "resources": {
            "requests": {"cpu": spec.resources.cpu, "memory": spec.resources.memory},
            "limits": limits,
        },
        "gpu": {
            "count": spec.resources.gpu_count,
            "type": spec.resources.gpu_type,
            "resourceName": GPU_RESOURCE,
            "typeLabel": GPU_TYPE_LABEL,
        },
        "placement": {"region": target.region},
        "probes": {
            # the runtime's load budget, in startup periods
            "startup": {
                "path": spec.health.startup,
                "periodSeconds": STARTUP_PERIOD_SECONDS,
                "failureThreshold": math.ceil(spec.health.startup_seconds / STARTUP_PERIOD_SECONDS),
            },
            "liveness": {"path": spec.health.liveness},
            "readiness": {"path": spec.health.readiness},
        },
        "networkPolicy": {"enabled": True, "ingressNamespace": target.ingress_namespace},
        "pdb": {"enabled": not knative and spec.scaling.min >= 2, "minAvailable": 1},
        "modelCache": {"sizeLimit": spec.model.size},
    }
