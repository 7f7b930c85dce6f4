"""The Pulumi program, in one readable path: stack config → spec → placement → targets → exports.

``__main__.py`` only calls ``run()``; keeping the body here lets unit tests run the exact
program under Pulumi's mocks.  Validation happens before the first resource is
registered, so an invalid or non-resident stack fails at preview with nothing created.
Each target is built by the component module its kind's profile names (``targets.kinds``).
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass
from typing import Any

import pulumi

from components.placement import TargetPlacement
from components.problems import StackError
from components.sources.pulumi_config import read_stack_config
from components.spec.secrets import split_keys
from components.targets.kinds import KINDS
from components.targets.labels import label_transform
from components.validation import ValidStack, validate_stack


@dataclass(frozen=True)
class StackSecrets:
    """The key setting as a secret Output, and how many keys it holds (a count reveals nothing)."""

    api_keys: pulumi.Output[str]
    key_count: int


def validated_stack() -> tuple[ValidStack, StackSecrets]:
    """Read and validate the stack's configuration; a bad stack stops the program here."""
    config = read_stack_config()
    try:
        valid = validate_stack(config.input, config.api_keys_plain)
    except StackError as error:
        raise pulumi.RunError(str(error)) from None
    key_count = len(split_keys(config.api_keys_plain or ""))
    return valid, StackSecrets(api_keys=config.secrets["apiKeys"], key_count=key_count)


def deploy_target(placement: TargetPlacement, valid: ValidStack, secrets: StackSecrets) -> Any:
    """The component of one target, from the module its kind's profile names."""
    module = importlib.import_module(KINDS[placement.target.kind].component)
    return module.deploy(placement, valid.spec, secrets.api_keys, secrets.key_count)


def placement_record(placement: TargetPlacement) -> dict[str, object]:
    """What the stack exports about one target's placement: the region and the rule that allowed it."""
    decision = placement.decision
    return {
        "kind": placement.target.kind.value,
        "region": decision.region_id,
        "rule": decision.rule_id,
        "reason": decision.reason,
        "source": decision.source,
        "fallbacks": [fb.region_id for fb in placement.fallbacks],
    }


def run() -> None:
    """Deploy the stack's service to every target it names and export the endpoints."""
    valid, secrets = validated_stack()
    pulumi.runtime.register_resource_transform(label_transform(valid.spec.labels))
    endpoints: dict[str, pulumi.Output[str]] = {}
    placements: dict[str, dict[str, object]] = {}
    for placement in valid.placement.targets:
        component = deploy_target(placement, valid, secrets)
        endpoints[placement.target.name] = component.endpoint
        placements[placement.target.name] = placement_record(placement)
    pulumi.export("endpoints", endpoints)
    pulumi.export("region", valid.spec.region)
    pulumi.export("dataClass", valid.spec.data_class.value)
    pulumi.export("placement", placements)
