"""Where the service runs: the ``tizi:targets`` list, read into ``Target`` values.

Each kind has its own keys (a kube context, a Koyeb region, an edge site's Docker host);
a target's ``region`` is what the residency rules judge it on.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from components.catalogue import TargetKind
from components.settings_reader import DNS_LABEL, REGION_ID, SettingsReader

EDGE_PULL_POLICIES = ("never", "missing")
#: 0.0.0.0 serves the site's network; 127.0.0.1 keeps the service behind a local proxy or tunnel.
BIND_ADDRESSES = ("0.0.0.0", "127.0.0.1")
KOYEB_INSTANCE_TYPES = ("nano", "micro", "small", "medium", "large", "xlarge")
_DOCKER_HOST = re.compile(r"^(unix:///\S+|tcp://[A-Za-z0-9.-]+:[0-9]+|ssh://[A-Za-z0-9@._-]+(:[0-9]+)?)$")
_CONTEXT = re.compile(r"^[A-Za-z0-9@._:/-]{1,120}$")
_EDGE_SITE = re.compile(r"^ma-edge-[a-z0-9-]{2,40}$")


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
    host: str = ""
    host_port: int = 0
    bind_address: str = "0.0.0.0"
    image_pull: str = "missing"
    instance_type: str = "nano"


_TARGET_KEYS: dict[TargetKind, tuple[str, ...]] = {
    TargetKind.KUBERNETES: ("kind", "name", "context", "namespace", "ingressNamespace"),
    TargetKind.KNATIVE: ("kind", "name", "context", "namespace"),
    TargetKind.KOYEB: ("kind", "name", "region", "instanceType"),
    TargetKind.EDGE: ("kind", "name", "site", "host", "hostPort", "bindAddress", "imagePull"),
}


def read_targets(
    r: SettingsReader, raw: Any, region: str, ministry: str, environment: str
) -> tuple[Target, ...]:
    """Every target of the stack; Kubernetes and Knative ones sit in the stack's region."""
    if not isinstance(raw, list) or not raw:
        r.fail("targets", raw, "must be a non-empty list of targets (kind: kubernetes, knative, koyeb, edge)")
        return ()
    targets: list[Target] = []
    for index, item in enumerate(raw):
        key = f"targets[{index}]"
        if not isinstance(item, Mapping):
            r.fail(key, item, "must be a mapping with at least a kind")
            continue
        kind_raw = r.choice(f"{key}.kind", item.get("kind"), tuple(k.value for k in TargetKind))
        if not kind_raw:
            continue
        kind = TargetKind(kind_raw)
        r.unknown(key, item, _TARGET_KEYS[kind])
        name = r.string(
            f"{key}.name",
            item.get("name"),
            DNS_LABEL,
            "must be a DNS label, unique among targets",
            default=kind.value,
        )
        targets.append(_target(r, key, kind, name, item, region, ministry, environment))
    names = [t.name for t in targets]
    for name in sorted({n for n in names if names.count(n) > 1}):
        r.fail("targets", names, f"target names must be unique; {name!r} repeats (set name: on each)")
    return tuple(targets)


def _target(
    r: SettingsReader,
    key: str,
    kind: TargetKind,
    name: str,
    item: Mapping[str, Any],
    region: str,
    ministry: str,
    environment: str,
) -> Target:
    if kind in (TargetKind.KUBERNETES, TargetKind.KNATIVE):
        default_ns = f"{ministry}-{environment}" if ministry and environment else "tizi"
        return Target(
            kind=kind,
            name=name,
            region=region,
            context=r.string(
                f"{key}.context",
                item.get("context"),
                _CONTEXT,
                "must be a kubeconfig context name",
                default="",
            ),
            namespace=r.string(
                f"{key}.namespace",
                item.get("namespace"),
                DNS_LABEL,
                "must be a DNS label",
                default=default_ns,
            ),
            ingress_namespace=r.string(
                f"{key}.ingressNamespace",
                item.get("ingressNamespace"),
                DNS_LABEL,
                "must be a DNS label",
                default="",
            ),
        )
    if kind is TargetKind.KOYEB:
        return Target(
            kind=kind,
            name=name,
            region=r.string(
                f"{key}.region",
                item.get("region"),
                REGION_ID,
                "must be a catalogue region that Koyeb serves (eu-paris, eu-frankfurt)",
            ),
            instance_type=r.choice(
                f"{key}.instanceType", item.get("instanceType"), KOYEB_INSTANCE_TYPES, default="nano"
            ),
        )
    site = r.string(
        f"{key}.site",
        item.get("site"),
        _EDGE_SITE,
        "must be an edge site id ma-edge-<site>",
    )
    return Target(
        kind=kind,
        name=name,
        region=site,
        host=r.string(
            f"{key}.host",
            item.get("host"),
            _DOCKER_HOST,
            "must be a Docker host URL: unix:///path, tcp://host:port or ssh://[user@]host[:port]",
        ),
        host_port=r.integer(f"{key}.hostPort", item.get("hostPort"), 1024, 65535, default=8080),
        bind_address=r.choice(
            f"{key}.bindAddress", item.get("bindAddress"), BIND_ADDRESSES, default="0.0.0.0"
        ),
        image_pull=r.choice(f"{key}.imagePull", item.get("imagePull"), EDGE_PULL_POLICIES, default="missing"),
    )
