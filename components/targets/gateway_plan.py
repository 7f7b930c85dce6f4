"""The gateway in front of every payload, as plain data: its settings file and, on the edge,
its containers.

Every target puts tizi's gateway (Envoy, image ``tizi/gateway``, see service/gateway) in
front of the payload: it checks the keys, limits and counts requests per key, and on the
edge terminates TLS and switches between payload revisions. What it is told is one JSON
file, ``gateway.json``, written here from the spec (the chart writes the same fields).

On an edge site:
- **the gateway** is one long-lived container per site target: it publishes the site port
  (and ``/metrics`` on the host's loopback), mounts the site's config volume read-only and
  a state volume for the site certificate. Its name never changes, so a roll never
  replaces it.
- **the payload** runs on the site's private network; each revision has its own name.
- **a publisher** per configuration (settings + keys) writes that configuration into the
  config volume and stays up, healthy, only once the gateway has applied it. The provider
  uploads files only when it creates a container, and waits for health, so ``pulumi up``
  moves on (and removes a replaced payload) only after the gateway has switched.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from components.spec.labels import COMPONENT_LABEL
from components.spec.service import ServiceSpec
from components.targets.edge_plan import Healthcheck, go_duration

GATEWAY_IMAGE = "tizi/gateway:0.1.0"
#: the gateway's ports inside its container (and in the pod on Kubernetes)
LISTEN_PORT = 8443
METRICS_PORT = 9095
CONFIG_DIR = "/etc/tizi-gateway"
STATE_DIR = "/var/lib/tizi-gateway"
RUN_DIR = "/run/tizi-gateway"
STAGING_DIR = "/staging"
GATEWAY_UID = "10001:10001"
#: the gateway sidecar's share of each pod (Envoy with one worker and the supervisor use
#: about 60 MiB); the namespace quota adds it to the payload's
#: Knative's queue-proxy sidecar in every revision pod (set per revision by the chart)
QUEUE_PROXY_RESOURCES = {
    "requests": {"cpu": "25m", "memory": "32Mi"},
    "limits": {"cpu": "250m", "memory": "128Mi"},
}
GATEWAY_RESOURCES = {
    "requests": {"cpu": "50m", "memory": "64Mi"},
    "limits": {"cpu": "250m", "memory": "128Mi"},
}


def gateway_settings(
    spec: ServiceSpec,
    upstream_host: str,
    upstream_port: int,
    *,
    tls_names: tuple[str, ...] = (),
    revision: str = "",
) -> dict[str, Any]:
    """``gateway.json`` for this spec (the gateway's own reader checks the same fields)."""
    settings: dict[str, Any] = {
        "upstream_host": upstream_host,
        "upstream_port": upstream_port,
        "listen_port": LISTEN_PORT,
        "metrics_port": METRICS_PORT,
        "requests_per_minute": spec.gateway.requests_per_minute,
        "burst": spec.gateway.burst,
        "tls": spec.gateway.tls,
        "open_paths": sorted({spec.health.startup, spec.health.liveness, spec.health.readiness}),
        # a model's whole answer (or stream) may take this long: the runtime's budget
        "request_timeout_s": 600,
    }
    if spec.gateway.tls != "off":
        settings["tls_names"] = list(tls_names)
    if revision:
        settings["revision"] = revision
    return settings


def settings_text(settings: Mapping[str, Any]) -> str:
    """The file's bytes: stable key order, so equal settings are equal files (and digests)."""
    return json.dumps(settings, sort_keys=True, indent=1) + "\n"


def config_revision(settings_json: str, keys: list[str]) -> str:
    """A digest of one configuration (settings and keys): the publisher's and the link's name."""
    digest = hashlib.sha256(settings_json.encode())
    for key in keys:
        digest.update(b"\0" + key.encode())
    return digest.hexdigest()[:12]


def _labels(labels: Mapping[str, str], component: str) -> list[dict[str, str]]:
    return [{"label": k, "value": v} for k, v in {**labels, COMPONENT_LABEL: component}.items()]


@dataclass(frozen=True)
class EdgeGatewayPlan:
    """The site's gateway and publisher containers (pulumi-docker 4.0.0 ``Container`` args)."""

    name: str
    network: str
    host_ip: str
    host_port: int
    metrics_port: int
    image: str = GATEWAY_IMAGE
    labels: Mapping[str, str] = field(default_factory=dict)
    drain_seconds: int = 5

    @property
    def config_volume(self) -> str:
        return f"{self.name}-config"

    @property
    def state_volume(self) -> str:
        return f"{self.name}-state"

    def gateway_args(self) -> dict[str, Any]:
        """The long-lived gateway: read-only root, no capabilities, non-root, restarts on its own."""
        health = Healthcheck(
            test=(
                "CMD",
                "python3",
                "-c",
                f"import urllib.request as u; u.urlopen('http://127.0.0.1:{METRICS_PORT}/ready', timeout=2)",
            ),
            interval_s=2,
            timeout_s=2,
            retries=3,
            start_period_s=5,
        )
        return {
            "name": self.name,
            "image": self.image,
            "user": GATEWAY_UID,
            "read_only": True,
            "tmpfs": {
                RUN_DIR: "rw,noexec,nosuid,nodev,size=8m,uid=10001,gid=10001,mode=0700",
                "/tmp": "rw,noexec,nosuid,nodev,size=8m",
            },
            "command": ["run", "--config-dir", CONFIG_DIR, "--drain-seconds", str(self.drain_seconds)],
            "volumes": [
                {"volume_name": self.config_volume, "container_path": CONFIG_DIR, "read_only": True},
                {"volume_name": self.state_volume, "container_path": STATE_DIR},
            ],
            "ports": [
                {"internal": LISTEN_PORT, "external": self.host_port, "ip": self.host_ip, "protocol": "tcp"},
                {
                    "internal": METRICS_PORT,
                    "external": self.metrics_port,
                    "ip": "127.0.0.1",
                    "protocol": "tcp",
                },
            ],
            "network_mode": self.network,
            "healthcheck": {
                "tests": list(health.test),
                "interval": go_duration(health.interval_s),
                "timeout": go_duration(health.timeout_s),
                "retries": health.retries,
                "start_period": go_duration(health.start_period_s),
            },
            "restart": "always",
            "log_driver": "json-file",
            "log_opts": {"max-size": "10m", "max-file": "3"},
            "memory": 256,
            "memory_swap": 256,
            "stop_timeout": self.drain_seconds + 5,
            "stop_signal": "SIGTERM",
            "destroy_grace_seconds": self.drain_seconds + 5,
            "capabilities": {"drops": ["ALL"]},
            "security_opts": ["no-new-privileges"],
            "labels": _labels(self.labels, "gateway"),
            "must_run": True,
        }

    def publisher_name(self, revision: str) -> str:
        return f"{self.name}-config-{revision}"

    def publisher_args(self, revision: str) -> dict[str, Any]:
        """A configuration's publisher, healthy once the gateway applied it (caller adds ``uploads``)."""
        return {
            "name": self.publisher_name(revision),
            "image": self.image,
            "user": GATEWAY_UID,
            # uploads land in /staging through `/`, which Docker refuses on a read-only root
            "read_only": False,
            "network_mode": "none",
            "command": [
                "publish",
                "--revision",
                revision,
                "--config-dir",
                CONFIG_DIR,
                "--state-dir",
                STATE_DIR,
            ],
            "volumes": [
                {"volume_name": self.config_volume, "container_path": CONFIG_DIR},
                {"volume_name": self.state_volume, "container_path": STATE_DIR, "read_only": True},
            ],
            "healthcheck": {
                "tests": ["CMD", "test", "-e", "/tmp/applied"],
                "interval": "1s",
                "timeout": "1s",
                "retries": 3,
                # a zero start period reads back as the engine default: spell a real one
                "start_period": "1s",
            },
            "restart": "unless-stopped",
            "memory": 64,
            "memory_swap": 64,
            "capabilities": {"drops": ["ALL"]},
            "security_opts": ["no-new-privileges"],
            "labels": _labels(self.labels, "gateway-publisher"),
            "must_run": True,
        }


def publisher_uploads(settings_json: str, keys: list[str]) -> list[dict[str, str]]:
    """The staged files: the settings and one file per key (flat: see the publisher)."""
    uploads = [{"file": f"{STAGING_DIR}/gateway.json", "content": settings_json}]
    uploads += [{"file": f"{STAGING_DIR}/key-{index}", "content": key} for index, key in enumerate(keys)]
    return uploads
