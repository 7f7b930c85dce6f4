"""Pure checks behind the policy pack: residency from the catalogue, no root, no privilege.

The residency rules are imported from ``components`` (one copy of the law encoding);
what this module adds is how to read placement and security facts from *any* resource
a forked stack might declare: labelled Kubernetes objects and Helm releases, Docker
containers, Koyeb services, raw Deployments and Knative Services.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from components.rules.catalogue import TargetKind, load_catalogue
from components.rules.residency import DataClass, decide
from components.spec.labels import DATA_CLASS_LABEL, REGION_LABEL

WORKLOAD_KINDS = ("Deployment", "StatefulSet", "DaemonSet", "ReplicaSet", "Job", "Pod")


@dataclass(frozen=True)
class Placed:
    """A region a resource would put the service in, and on which kind of target."""

    resource: str
    region: str
    target: TargetKind
    data_class: str | None


def _labels(props: Mapping[str, Any], resource_type: str) -> dict[str, str]:
    if resource_type.startswith("docker:"):
        return {
            str(i.get("label")): str(i.get("value"))
            for i in props.get("labels") or []
            if isinstance(i, Mapping)
        }
    metadata = props.get("metadata") or {}
    return dict(metadata.get("labels") or {}) if isinstance(metadata, Mapping) else {}


def _koyeb_regions(props: Mapping[str, Any]) -> list[str]:
    by_code = {r.koyeb_region: r.id for r in load_catalogue().regions if r.koyeb_region}
    regions = (props.get("definition") or {}).get("regions") or []
    return [by_code.get(code, f"koyeb-{code}") for code in regions]


def placements(resource: str, resource_type: str, props: Mapping[str, Any]) -> list[Placed]:
    """Where this resource puts the service, as far as its inputs say."""
    labels = _labels(props, resource_type)
    data_class = labels.get(DATA_CLASS_LABEL)
    if resource_type == "koyeb:index/service:Service":
        return [Placed(resource, region, TargetKind.KOYEB, None) for region in _koyeb_regions(props)]
    if resource_type == "docker:index/container:Container" and REGION_LABEL in labels:
        return [Placed(resource, labels[REGION_LABEL], TargetKind.EDGE, data_class)]
    if resource_type == "kubernetes:helm.sh/v3:Release":
        values = props.get("values") or {}
        region = (values.get("placement") or {}).get("region")
        common = values.get("commonLabels") or {}
        target = TargetKind.KNATIVE if (values.get("knative") or {}).get("enabled") else TargetKind.KUBERNETES
        return [Placed(resource, region, target, common.get(DATA_CLASS_LABEL))] if region else []
    if resource_type == "kubernetes:core/v1:Namespace" and REGION_LABEL in labels:
        return [Placed(resource, labels[REGION_LABEL], TargetKind.KUBERNETES, data_class)]
    return []


def stack_data_class(found: Iterable[Placed], configured: str | None) -> tuple[str | None, list[str]]:
    """The stack's data class: the one its resources declare, else the pack's configuration."""
    declared = {p.data_class for p in found if p.data_class}
    if len(declared) > 1:
        return None, [
            f"resources declare several data classes ({', '.join(sorted(declared))}); a stack has one"
        ]
    if declared:
        return declared.pop(), []
    return configured, []


def residency_violations(found: list[Placed], configured_data_class: str | None) -> list[str]:
    """One message per placement the residency rules refuse, citing rule and source."""
    data_class, problems = stack_data_class(found, configured_data_class)
    if problems:
        return problems
    if found and data_class is None:
        return [
            f"{found[0].resource}: no data class: label resources {DATA_CLASS_LABEL} or set the "
            "pack's dataClass configuration"
        ]
    if data_class not in {d.value for d in DataClass}:
        return [f"unknown data class {data_class!r}"] if found else []
    catalogue = load_catalogue()
    messages = []
    for placed in found:
        decision = decide(catalogue, placed.region, DataClass(data_class), placed.target)
        if not decision.allowed:
            messages.append(
                f"{placed.resource}: region {placed.region} refused for data class {data_class!r} on "
                f"{placed.target.value} by {decision.rule_id}: {decision.reason} (source: {decision.source})"
            )
    return messages


def _container_problems(
    where: str, container: Mapping[str, Any], pod_context: Mapping[str, Any]
) -> list[str]:
    context = container.get("securityContext") or {}
    problems = []
    if context.get("privileged"):
        problems.append(f"{where}: privileged containers are forbidden")
    if context.get("allowPrivilegeEscalation", True) is not False:
        problems.append(f"{where}: allowPrivilegeEscalation must be false")
    non_root = context.get("runAsNonRoot", pod_context.get("runAsNonRoot"))
    user = context.get("runAsUser", pod_context.get("runAsUser"))
    if non_root is not True or user == 0:
        problems.append(f"{where}: must run as non-root (runAsNonRoot: true and runAsUser != 0)")
    return problems


def _pod_spec(kind: str, props: Mapping[str, Any]) -> Mapping[str, Any] | None:
    spec = props.get("spec") or {}
    if kind == "Pod":
        return spec
    if kind == "Job":
        return (spec.get("template") or {}).get("spec")
    return (spec.get("template") or {}).get("spec") if "template" in spec else None


def security_violations(resource: str, resource_type: str, props: Mapping[str, Any]) -> list[str]:
    """Root or privileged containers, in whatever form the resource declares them."""
    if resource_type == "docker:index/container:Container":
        problems = []
        if props.get("privileged"):
            problems.append(f"{resource}: privileged containers are forbidden")
        user = str(props.get("user") or "").split(":", 1)[0]
        if user in ("", "0", "root"):
            problems.append(f"{resource}: must run as a non-root user (set user, e.g. 10001:10001)")
        return problems
    if resource_type == "kubernetes:helm.sh/v3:Release":
        values = props.get("values") or {}
        container = {"securityContext": values.get("containerSecurityContext") or {}}
        pod = values.get("podSecurityContext") or {}
        if not container["securityContext"] and not pod:
            return []  # the chart's restricted defaults apply
        merged_pod = {"runAsNonRoot": True, "runAsUser": 10001, **pod}
        merged = {"securityContext": {"allowPrivilegeEscalation": False, **container["securityContext"]}}
        return _container_problems(f"{resource} (values)", merged, merged_pod)
    kind = resource_type.rsplit(":", 1)[-1]
    if resource_type.startswith("kubernetes:") and kind in WORKLOAD_KINDS:
        pod = _pod_spec(kind, props) or {}
    elif resource_type.startswith("kubernetes:serving.knative.dev/") and kind == "Service":
        pod = ((props.get("spec") or {}).get("template") or {}).get("spec") or {}
    else:
        return []
    pod_context = pod.get("securityContext") or {}
    return [
        problem
        for container in [*(pod.get("initContainers") or []), *(pod.get("containers") or [])]
        for problem in _container_problems(f"{resource}/{container.get('name', '?')}", container, pod_context)
    ]
