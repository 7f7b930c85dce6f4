"""Read a ``Pulumi.<stack>.yaml`` file into the settings the validator takes.

Offline tools (``tizi check``, the benchmark, tests) read stack files directly; the
Pulumi program reads the same keys from ``pulumi.Config`` (``config_source``).  Secret
values are never decoded here: only whether each one is encrypted matters.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from components.spec import SECRET_KEYS
from components.validation import SecretState

NAMESPACE = "tizi:"


@dataclass(frozen=True)
class StackFile:
    """The ``tizi:`` settings of one stack file, secrets reduced to their state."""

    path: Path
    settings: dict[str, Any]
    secrets: dict[str, str]


class StackFileError(ValueError):
    """The file is not a readable Pulumi stack file at all."""


def _is_encrypted(value: Any) -> bool:
    return isinstance(value, dict) and set(value) == {"secure"} and isinstance(value["secure"], str)


def read_stack_file(path: Path) -> StackFile:
    """Parse a stack file; raise StackFileError when it is not YAML with a config mapping."""
    try:
        document = yaml.safe_load(path.read_text("utf-8")) or {}
    except (OSError, yaml.YAMLError) as error:
        raise StackFileError(f"{path}: cannot read stack file: {error}") from error
    if not isinstance(document, dict):
        raise StackFileError(f"{path}: a stack file is a YAML mapping with a config: section")
    config = document.get("config") or {}
    if not isinstance(config, dict):
        raise StackFileError(f"{path}: config: must be a mapping of namespace:key to values")
    settings: dict[str, Any] = {}
    secrets: dict[str, str] = {}
    for full_key, value in config.items():
        if not isinstance(full_key, str) or not full_key.startswith(NAMESPACE):
            continue
        key = full_key.removeprefix(NAMESPACE)
        if key in SECRET_KEYS:
            secrets[key] = SecretState.ENCRYPTED if _is_encrypted(value) else SecretState.PLAINTEXT
        elif _is_encrypted(value):
            settings[key] = "(encrypted)"
        else:
            settings[key] = value
    return StackFile(path=path, settings=settings, secrets=secrets)
