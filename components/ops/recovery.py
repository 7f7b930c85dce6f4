"""Converge after an interrupted update: what a killed `pulumi up` leaves, and how to clear it.

A crash mid-update leaves two things: the file backend's lock (cleared by
``automation.clear_stale_locks``) and *pending creates*, resources whose creation had
started but was never recorded.  For edge containers that means an orphan container
holding the very name the next attempt will use (names are per revision), so the next
`up` fails with a name conflict; a site network caught the same way blocks the next `up`
too (Docker refuses a second network of the same name).  An orphan never served as the recorded container and
may be half-made (created without its key files), so it is removed, not adopted; the
next `up` creates it properly.
"""

from __future__ import annotations

import subprocess
import sys
from dataclasses import dataclass
from typing import Any

CONTAINER = "docker:index/container:Container"
NETWORK = "docker:index/network:Network"
#: how each kind of orphan is removed; containers first (a network with one attached is refused)
REMOVE = {CONTAINER: ("rm", "-f"), NETWORK: ("network", "rm")}


@dataclass(frozen=True)
class Orphan:
    """A container or network whose creation was interrupted: where it lives and its name."""

    host: str
    name: str
    type: str = CONTAINER


def _plain(value: Any) -> Any:
    """Values from ``export_stack`` (which shows secrets) with their secret envelopes removed."""
    if isinstance(value, dict) and "plaintext" in value:
        import json

        return json.loads(value["plaintext"])
    return value


def _provider_host(resources: list[dict], provider_ref: str) -> str:
    urn = provider_ref.rsplit("::", 1)[0]
    for resource in resources:
        if resource.get("urn") == urn:
            return _plain((resource.get("inputs") or {}).get("host")) or "unix:///var/run/docker.sock"
    return "unix:///var/run/docker.sock"


def pending_orphans(deployment: dict) -> list[Orphan]:
    """Containers and networks of the checkpoint's pending creates, containers first."""
    resources = deployment.get("resources") or []
    orphans = []
    for operation in deployment.get("pending_operations") or []:
        resource = operation.get("resource") or {}
        if operation.get("type") != "creating" or resource.get("type") not in REMOVE:
            continue
        name = _plain((resource.get("inputs") or {}).get("name"))
        if isinstance(name, str) and name:
            host = _provider_host(resources, resource.get("provider", ""))
            orphans.append(Orphan(host, name, resource["type"]))
    return sorted(orphans, key=lambda orphan: list(REMOVE).index(orphan.type))


def partial_creates(deployment: dict) -> list[Orphan]:
    """Containers recorded with initialisation errors: created, but never healthy.

    The docker provider keeps such a container (upstream's behaviour); with host networking
    it would keep sharing the site's port with the healthy revision until the next ``up``.
    """
    resources = deployment.get("resources") or []
    failed = []
    for resource in resources:
        if resource.get("type") != CONTAINER or not resource.get("initErrors"):
            continue
        recorded = resource.get("outputs") or resource.get("inputs") or {}
        name = _plain(recorded.get("name"))
        if isinstance(name, str) and name:
            failed.append(Orphan(_provider_host(resources, resource.get("provider", "")), name))
    return failed


def roll_back_partial_creates(deployment: dict) -> dict:
    """The checkpoint without its partially created containers, and with the resources they
    were replacing current again (their ``delete`` mark removed)."""
    resources = deployment.get("resources") or []
    failed = {r.get("urn") for r in resources if r.get("type") == CONTAINER and r.get("initErrors")}
    kept = []
    for resource in resources:
        if resource.get("urn") in failed and resource.get("initErrors"):
            continue
        if resource.get("urn") in failed and resource.get("delete"):
            resource = {k: v for k, v in resource.items() if k not in ("delete", "pendingReplacement")}
        kept.append(resource)
    return {**deployment, "resources": kept}


def remove_orphans(orphans: list[Orphan]) -> list[Orphan]:
    """Remove each orphan (container, then network) if it exists; returns those removed."""
    removed = []
    for orphan in orphans:
        try:
            result = subprocess.run(["docker", "--host", orphan.host, *REMOVE[orphan.type], orphan.name],
                                    capture_output=True, text=True, check=False)  # fmt: skip
        except FileNotFoundError:
            print(f"tizi: cannot remove {orphan.name} on {orphan.host}: the docker CLI is not installed; "
                  "remove it by hand before the next up", file=sys.stderr)  # fmt: skip
            continue
        if result.returncode == 0:
            removed.append(orphan)
            print(
                f"tizi: removed {orphan.name} on {orphan.host}, left by a failed or interrupted update",
                file=sys.stderr,
            )
    return removed
