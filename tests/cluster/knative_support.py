"""What the Knative cluster tests share: one Knative Service of a deployed stack, seen through
the API server and through Traefik (scripts/cluster/knative-serving.sh installs both).

The tests reach the ingress by its ClusterIP (the host routes the service range through the
node) and name the Knative Service by Host header, as a client behind real DNS would.
"""

from __future__ import annotations

import base64
from dataclasses import dataclass
from typing import Any

from tests.engine_support import run

#: the domain the test cluster's Knative gives routes (config-domain)
DOMAIN = "knative.tizi.test"


@dataclass(frozen=True)
class KnativeService:
    """One Knative Service (`ksvc`) in its namespace."""

    namespace: str
    name: str = "inference"

    @property
    def host(self) -> str:
        """The route's host name: Traefik picks the Knative Service by it."""
        return f"{self.name}.{self.namespace}.{DOMAIN}"

    def resource(self, core: Any) -> dict:
        return core.CustomObjectsApi().get_namespaced_custom_object(
            "serving.knative.dev", "v1", self.namespace, "services", self.name
        )

    def ready(self, core: Any) -> bool:
        conditions = self.resource(core).get("status", {}).get("conditions", [])
        return {c["type"]: c["status"] for c in conditions}.get("Ready") == "True"

    def serving_pods(self, core: Any, terminating: bool = False) -> list:
        """The revision's pods; those being deleted only when ``terminating``."""
        pods = core.CoreV1Api().list_namespaced_pod(
            self.namespace, label_selector=f"serving.knative.dev/service={self.name}"
        )
        return [p for p in pods.items if terminating or not p.metadata.deletion_timestamp]

    def first_key(self, core: Any) -> str:
        """An API key from the Secret the component created (``<service>-api-keys``)."""
        secret = core.CoreV1Api().read_namespaced_secret(f"{self.name}-api-keys", self.namespace)
        return base64.b64decode(sorted(secret.data.items())[0][1]).decode()

    def remove_pods_first(self, kube_context: str) -> None:
        """Delete the Knative Service and force its pods out before ``destroy``: revision pods
        hold a 300 s grace period, which an ordered namespace deletion would wait out
        (scripts/CLUSTER.md)."""
        kubectl = ("kubectl", "--context", kube_context, "-n", self.namespace)
        run(*kubectl, "delete", "ksvc", "--all", "--wait=false", check=False)
        run(*kubectl, "delete", "pods", "--all", "--force", "--grace-period=0", check=False)


def traefik_address(core: Any) -> str:
    """The ingress's ClusterIP (Traefik's Service in traefik-system)."""
    return str(core.CoreV1Api().read_namespaced_service("traefik", "traefik-system").spec.cluster_ip)
