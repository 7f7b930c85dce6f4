"""Read the ``tizi:`` settings from Pulumi's stack configuration.

This is the only place the program touches ``pulumi.Config``: everything below it
receives a validated spec and secret ``Output`` values, never raw configuration.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

import pulumi
from pulumi.runtime import config as runtime_config

from components.spec import SECRET_KEYS, TOP_LEVEL_KEYS
from components.validation import SecretState

NAMESPACE = "tizi"


@dataclass(frozen=True)
class StackConfig:
    """Settings without secrets, the state of each secret, and the secrets as Outputs."""

    settings: dict[str, Any]
    secret_states: dict[str, str]
    secrets: dict[str, pulumi.Output[str]]
    #: the decrypted key setting, only for shape validation; never logged or exported
    api_keys_plain: str | None


def _decode(raw: str) -> Any:
    """Structured values reach the program as JSON strings; plain strings stay strings."""
    stripped = raw.strip()
    if stripped[:1] in ("{", "[") or stripped in ("true", "false") or stripped.lstrip("-").isdigit():
        try:
            return json.loads(stripped)
        except json.JSONDecodeError:
            return raw
    return raw


def _configured_keys() -> list[str]:
    """Every ``tizi:`` key the stack sets, so typos are reported, not silently ignored."""
    keys = set(runtime_config.CONFIG.get()) | set(runtime_config.get_config_env())
    return sorted(k.split(":", 1)[1] for k in keys if k.startswith(f"{NAMESPACE}:"))


def read_stack_config() -> StackConfig:
    """Collect settings and secrets; secrets are only ever read with ``get_secret``."""
    config = pulumi.Config(NAMESPACE)
    settings: dict[str, Any] = {}
    for key in sorted(set(TOP_LEVEL_KEYS) | set(_configured_keys())):
        if key in SECRET_KEYS:
            continue
        raw = runtime_config.get_config(f"{NAMESPACE}:{key}")
        if raw is not None:
            settings[key] = _decode(raw) if isinstance(raw, str) else raw
    states: dict[str, str] = {}
    secrets: dict[str, pulumi.Output[str]] = {}
    for key in SECRET_KEYS:
        value = config.get_secret(key)
        if value is None:
            states[key] = SecretState.MISSING
        else:
            full_key = f"{NAMESPACE}:{key}"
            encrypted = runtime_config.is_config_secret(full_key)
            states[key] = SecretState.ENCRYPTED if encrypted else SecretState.PLAINTEXT
            secrets[key] = value
    plain = runtime_config.get_config(f"{NAMESPACE}:apiKeys")
    return StackConfig(
        settings=settings,
        secret_states=states,
        secrets=secrets,
        api_keys_plain=plain if isinstance(plain, str) else None,
    )
