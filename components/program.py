"""The Pulumi program, in one readable path: stack config → spec → placement → targets → exports.

``__main__.py`` only calls ``run()``; keeping the body here lets unit tests run the exact
program under Pulumi's mocks.  Validation happens before the first resource is
registered, so an invalid or non-resident stack fails at preview with nothing created.
"""

from __future__ import annotations

from dataclasses import dataclass

import pulumi
import pulumi_docker as docker
import pulumi_koyeb as koyeb
import pulumi_kubernetes as k8s

from components.catalogue import TargetKind
from components.config_source import read_stack_config
from components.edge import EdgeService, EdgeServiceArgs
from components.koyeb import KoyebService, KoyebServiceArgs
from components.kubernetes import KubernetesService, KubernetesServiceArgs
from components.labels import label_transform
from components.placement import TargetPlacement
from components.problems import StackError
from components.secrets import split_keys
from components.validation import ValidStack, validate_settings


@dataclass(frozen=True)
class StackSecrets:
    """The key setting as a secret Output, and how many keys it holds (a count reveals nothing)."""

    api_keys: pulumi.Output[str]
    key_count: int


def _kubernetes_target(placement: TargetPlacement, valid: ValidStack, secrets: StackSecrets):
    target = placement.target
    provider = k8s.Provider(f"{target.name}-cluster", context=target.context or None)
    return KubernetesService(
        target.name,
        KubernetesServiceArgs(
            spec=valid.spec,
            placement=placement,
            api_keys=secrets.api_keys,
            knative=target.kind is TargetKind.KNATIVE,
        ),
        opts=pulumi.ResourceOptions(providers={"kubernetes": provider}),
    )


def _koyeb_target(placement: TargetPlacement, valid: ValidStack, secrets: StackSecrets):
    provider = koyeb.Provider(f"{placement.target.name}-koyeb")
    return KoyebService(
        placement.target.name,
        KoyebServiceArgs(spec=valid.spec, placement=placement, api_keys=secrets.api_keys),
        opts=pulumi.ResourceOptions(providers={"koyeb": provider}),
    )


def _edge_target(placement: TargetPlacement, valid: ValidStack, secrets: StackSecrets):
    target = placement.target
    provider = docker.Provider(f"{target.name}-engine", host=target.host)
    return EdgeService(
        target.name,
        EdgeServiceArgs(
            spec=valid.spec, placement=placement, api_keys=secrets.api_keys, key_count=secrets.key_count
        ),
        opts=pulumi.ResourceOptions(providers={"docker": provider}),
    )


BUILDERS = {
    TargetKind.KUBERNETES: _kubernetes_target,
    TargetKind.KNATIVE: _kubernetes_target,
    TargetKind.KOYEB: _koyeb_target,
    TargetKind.EDGE: _edge_target,
}


def validated_stack() -> tuple[ValidStack, StackSecrets]:
    """Read and validate the stack's configuration; a bad stack stops the program here."""
    config = read_stack_config()
    try:
        valid = validate_settings(config.settings, config.secret_states, config.api_keys_plain)
    except StackError as error:
        raise pulumi.RunError(str(error)) from None
    key_count = len(split_keys(config.api_keys_plain or ""))
    return valid, StackSecrets(api_keys=config.secrets["apiKeys"], key_count=key_count)


def run() -> None:
    """Deploy the stack's service to every target it names and export the endpoints."""
    valid, secrets = validated_stack()
    pulumi.runtime.register_resource_transform(label_transform(valid.spec.labels))
    endpoints: dict[str, pulumi.Output[str]] = {}
    placements: dict[str, dict[str, object]] = {}
    for placement in valid.placement.targets:
        component = BUILDERS[placement.target.kind](placement, valid, secrets)
        endpoints[placement.target.name] = component.endpoint
        decision = placement.decision
        placements[placement.target.name] = {
            "kind": placement.target.kind.value,
            "region": decision.region_id,
            "rule": decision.rule_id,
            "reason": decision.reason,
            "source": decision.source,
            "fallbacks": [fb.region_id for fb in placement.fallbacks],
        }
    pulumi.export("endpoints", endpoints)
    pulumi.export("region", valid.spec.region)
    pulumi.export("dataClass", valid.spec.data_class.value)
    pulumi.export("placement", placements)
