"""Read the stack's settings from Pulumi's configuration: the program's only config reader.

Everything below receives a validated spec and secret ``Output`` values, never raw
configuration.  The decoding is ``stack_input.decode_config``, shared with the stack-file
reader, so the offline check and the program see the same settings.
"""

from __future__ import annotations

from dataclasses import dataclass

import pulumi
from pulumi.runtime import config as runtime_config

from components.sources.stack_input import NAMESPACE, StackInput, decode_config
from components.spec.secrets import SECRET_KEYS


@dataclass(frozen=True)
class StackConfig:
    """The stack's input, its secrets as Outputs, and the decrypted keys for shape checks only."""

    input: StackInput
    secrets: dict[str, pulumi.Output[str]]
    #: the decrypted key setting, only for shape validation; never logged or exported
    api_keys_plain: str | None


def engine_values() -> dict[str, str]:
    """Every configuration value the engine passed this program, as ``namespace:key`` → string."""
    return {**runtime_config.get_config_env(), **runtime_config.CONFIG.get()}


def read_stack_config() -> StackConfig:
    """Collect settings and secrets; secrets leave this function only as secret Outputs."""
    values = engine_values()
    secret_keys = {key for key in values if runtime_config.is_config_secret(key)}
    stack_input = decode_config(values, secret_keys)
    config = pulumi.Config(NAMESPACE)
    secrets: dict[str, pulumi.Output[str]] = {}
    for key in SECRET_KEYS:
        value = config.get_secret(key)
        if value is not None:
            secrets[key] = value
    plain = values.get(f"{NAMESPACE}:apiKeys")
    return StackConfig(
        input=stack_input, secrets=secrets, api_keys_plain=plain if isinstance(plain, str) else None
    )
