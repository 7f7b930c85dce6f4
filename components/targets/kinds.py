"""Every target kind in one table: its settings, where it is placed, what it can do.

Each kind is one frozen ``KindProfile``: the keys its ``tizi:targets`` entry may set and
how they are read, which setting carries the region the residency rules judge, whether it
can scale to zero, run GPUs or use fallback regions, whether it deploys the Helm chart,
which toolchain parts ``make up`` must build for it, the entry ``tizi stack new`` writes,
and the module holding its Pulumi component.  The spec reader, placement, the program,
the command line and the policy pack all ask this table; none of them names a kind.

No Pulumi import here: offline tools (``tizi check``) read targets through this module.
Adding a kind: one profile below and one entry in ``KINDS`` (README, "Adding a target kind").
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from components.rules.catalogue import TargetKind
from components.spec.reader import DNS_LABEL, REGION_ID, SettingsReader
from components.spec.target import Target

EDGE_PULL_POLICIES = ("never", "missing")
#: 0.0.0.0 serves the site's network; 127.0.0.1 keeps the service behind a local proxy or tunnel.
BIND_ADDRESSES = ("0.0.0.0", "127.0.0.1")
KOYEB_INSTANCE_TYPES = ("nano", "micro", "small", "medium", "large", "xlarge")
# Hosts and users start with a letter or digit: a value starting with '-' would read as an
# option to ssh or docker; no shell metacharacters or whitespace anywhere.
DOCKER_HOST = re.compile(
    r"unix:///[A-Za-z0-9._/-]{1,200}"
    r"|tcp://[A-Za-z0-9][A-Za-z0-9.-]{0,252}:[0-9]{1,5}"
    r"|ssh://([A-Za-z0-9_][A-Za-z0-9._-]{0,31}@)?[A-Za-z0-9][A-Za-z0-9.-]{0,252}(:[0-9]{1,5})?"
)
KUBE_CONTEXT = re.compile(r"[A-Za-z0-9][A-Za-z0-9@._:/-]{0,119}")
#: namespaces that belong to the cluster or its platform, never to a ministry's service
SYSTEM_NAMESPACES = ("default",)
SYSTEM_NAMESPACE_PREFIXES = ("kube-", "knative-", "istio-", "openshift", "cattle-", "gatekeeper-")
EDGE_SITE = re.compile(r"ma-edge-[a-z0-9-]{2,40}")


@dataclass(frozen=True)
class StackContext:
    """The stack-wide settings a target's defaults depend on."""

    region: str
    ministry: str
    environment: str

    @property
    def default_namespace(self) -> str:
        return f"{self.ministry}-{self.environment}" if self.ministry and self.environment else "tizi"


@dataclass(frozen=True)
class NewStackOptions:
    """What ``tizi stack new`` asks for, to write one target entry of each kind."""

    context: str
    edge_site: str
    edge_host: str
    koyeb_region: str


#: reads one target entry: (reader, key prefix such as ``targets[0]``, the entry, the stack, name)
TargetReader = Callable[[SettingsReader, str, Mapping[str, Any], StackContext, str], Target]


@dataclass(frozen=True)
class KindProfile:
    """Everything tizi knows about one target kind outside its Pulumi component."""

    kind: TargetKind
    #: keys a ``tizi:targets`` entry of this kind may set (``kind`` and ``name`` included)
    keys: tuple[str, ...]
    read: TargetReader
    #: the target key holding the region judged by the residency rules; None: ``tizi:region``
    region_key: str | None
    scale_to_zero: bool
    gpu: bool
    #: whether ``tizi:fallbackRegions`` apply to this kind (and are judged for it)
    fallbacks: bool
    #: deployed through ``charts/inference-service`` (so ``tizi values`` can print its values)
    chart: bool
    #: parts of the offline toolchain (scripts/toolchain.sh) a stack with this kind needs
    tools: tuple[str, ...]
    #: module with ``deploy(placement, spec, api_keys, key_count)`` returning the component
    component: str
    new_entry: Callable[[NewStackOptions], dict[str, Any]]
    #: what the target takes for itself on its platform; two targets taking the same collide
    occupies: Callable[[Target], str]

    def region_setting(self, index: int) -> str:
        """The setting a refusal of this target's region names (``region``, ``targets[1].site``)."""
        return f"targets[{index}].{self.region_key}" if self.region_key else "region"


def _cluster_target(
    r: SettingsReader, key: str, item: Mapping[str, Any], stack: StackContext, name: str, kind: TargetKind
) -> Target:
    return Target(
        kind=kind,
        name=name,
        region=stack.region,
        context=r.string(
            f"{key}.context",
            item.get("context"),
            KUBE_CONTEXT,
            "must be a kubeconfig context name",
            default="",
        ),
        namespace=r.string(
            f"{key}.namespace",
            item.get("namespace"),
            DNS_LABEL,
            "must be a DNS label",
            default=stack.default_namespace,
        ),
        ingress_namespace=r.string(
            f"{key}.ingressNamespace",
            item.get("ingressNamespace"),
            DNS_LABEL,
            "must be a DNS label",
            default="",
        ),
    )


def _check_namespace(r: SettingsReader, key: str, target: Target) -> Target:
    if target.namespace in SYSTEM_NAMESPACES or target.namespace.startswith(SYSTEM_NAMESPACE_PREFIXES):
        r.fail(
            f"{key}.namespace",
            target.namespace,
            "is a system namespace; the service gets a namespace of its own (default: <ministry>-<env>)",
        )
    return target


def _read_kubernetes(
    r: SettingsReader, key: str, item: Mapping[str, Any], stack: StackContext, name: str
) -> Target:
    return _check_namespace(r, key, _cluster_target(r, key, item, stack, name, TargetKind.KUBERNETES))


def _read_knative(
    r: SettingsReader, key: str, item: Mapping[str, Any], stack: StackContext, name: str
) -> Target:
    target = _check_namespace(r, key, _cluster_target(r, key, item, stack, name, TargetKind.KNATIVE))
    init_containers = r.boolean(f"{key}.initContainers", item.get("initContainers"), default=False)
    return dataclasses.replace(target, init_containers=init_containers)


def _read_koyeb(
    r: SettingsReader, key: str, item: Mapping[str, Any], stack: StackContext, name: str
) -> Target:
    return Target(
        kind=TargetKind.KOYEB,
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


def _read_edge(
    r: SettingsReader, key: str, item: Mapping[str, Any], stack: StackContext, name: str
) -> Target:
    host_port = r.integer(f"{key}.hostPort", item.get("hostPort"), 1024, 65535, default=8080)
    metrics_port = r.integer(
        f"{key}.metricsPort", item.get("metricsPort"), 1024, 65535, default=min(host_port + 1, 65535)
    )
    if metrics_port == host_port:
        r.fail(f"{key}.metricsPort", metrics_port, f"must differ from {key}.hostPort ({host_port})")
    return Target(
        kind=TargetKind.EDGE,
        name=name,
        region=r.string(f"{key}.site", item.get("site"), EDGE_SITE, "must be an edge site id ma-edge-<site>"),
        host=r.string(
            f"{key}.host",
            item.get("host"),
            DOCKER_HOST,
            "must be a Docker host URL: unix:///path, tcp://host:port or ssh://[user@]host[:port]",
        ),
        host_port=host_port,
        metrics_port=metrics_port,
        bind_address=r.choice(
            f"{key}.bindAddress", item.get("bindAddress"), BIND_ADDRESSES, default="0.0.0.0"
        ),
        image_pull=r.choice(f"{key}.imagePull", item.get("imagePull"), EDGE_PULL_POLICIES, default="missing"),
    )


def _new_cluster_entry(kind: TargetKind) -> Callable[[NewStackOptions], dict[str, Any]]:
    def entry(options: NewStackOptions) -> dict[str, Any]:
        return {
            "kind": kind.value,
            "name": kind.value,
            **({"context": options.context} if options.context else {}),
        }

    return entry


def _new_koyeb_entry(options: NewStackOptions) -> dict[str, Any]:
    return {"kind": "koyeb", "name": "koyeb", "region": options.koyeb_region, "instanceType": "nano"}


def _new_edge_entry(options: NewStackOptions) -> dict[str, Any]:
    site = options.edge_site.removeprefix("ma-edge-")
    return {
        "kind": "edge",
        "name": f"edge-{site}",
        "site": options.edge_site,
        "host": options.edge_host,
        "hostPort": 18080,
    }


def _cluster_place(target: Target) -> str:
    # one release name per namespace: a Kubernetes and a Knative target there would collide
    return f"namespace {target.namespace} of cluster context {target.context or '(current)'}"


def _koyeb_place(target: Target) -> str:
    # the app name (ministry-env-service) is global to the Koyeb organisation
    return "the Koyeb app of this stack"


def _edge_place(target: Target) -> str:
    return f"port {target.host_port} of Docker host {target.host}"


KUBERNETES = KindProfile(
    kind=TargetKind.KUBERNETES,
    keys=("kind", "name", "context", "namespace", "ingressNamespace"),
    read=_read_kubernetes,
    region_key=None,
    scale_to_zero=False,
    gpu=True,
    fallbacks=True,
    chart=True,
    tools=("kubernetes", "helm"),
    component="components.targets.kubernetes",
    new_entry=_new_cluster_entry(TargetKind.KUBERNETES),
    occupies=_cluster_place,
)
KNATIVE = KindProfile(
    kind=TargetKind.KNATIVE,
    keys=("kind", "name", "context", "namespace", "initContainers"),
    read=_read_knative,
    region_key=None,
    scale_to_zero=True,
    gpu=True,
    fallbacks=True,
    chart=True,
    tools=("kubernetes", "helm"),
    component="components.targets.knative",
    new_entry=_new_cluster_entry(TargetKind.KNATIVE),
    occupies=_cluster_place,
)
KOYEB = KindProfile(
    kind=TargetKind.KOYEB,
    keys=("kind", "name", "region", "instanceType"),
    read=_read_koyeb,
    region_key="region",
    scale_to_zero=True,
    gpu=True,
    fallbacks=False,
    chart=False,
    # the koyeb provider cannot be built offline (README, "Toolchain"): mocks only
    tools=(),
    component="components.targets.koyeb",
    new_entry=_new_koyeb_entry,
    occupies=_koyeb_place,
)
EDGE = KindProfile(
    kind=TargetKind.EDGE,
    keys=("kind", "name", "site", "host", "hostPort", "metricsPort", "bindAddress", "imagePull"),
    read=_read_edge,
    region_key="site",
    scale_to_zero=False,
    gpu=False,
    fallbacks=False,
    chart=False,
    tools=("docker",),
    component="components.targets.edge",
    new_entry=_new_edge_entry,
    occupies=_edge_place,
)

#: The one table of target kinds, in the order ``tizi`` lists them.
KINDS: Mapping[TargetKind, KindProfile] = {p.kind: p for p in (KUBERNETES, KNATIVE, KOYEB, EDGE)}


def kinds_with(capability: str) -> tuple[TargetKind, ...]:
    """Kinds whose profile has ``capability`` set (``scale_to_zero``, ``gpu``, ``chart``…)."""
    return tuple(p.kind for p in KINDS.values() if getattr(p, capability))
