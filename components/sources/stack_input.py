"""The one input type of validation: a stack's ``tizi:`` settings, decoded one way.

Pulumi hands a program its configuration as strings (structured values as JSON), with a
set of keys that are secret.  ``decode_config`` turns exactly that into a ``StackInput``;
the program feeds it Pulumi's own config, and the stack-file reader feeds it what the
engine would pass for the file.  One decoding path is why a file that passes
``tizi check`` is exactly one that previews.
"""

from __future__ import annotations

import json
from collections.abc import Collection, Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

from components.problems import Problem
from components.spec.secrets import SECRET_KEYS

NAMESPACE = "tizi"
PREFIX = f"{NAMESPACE}:"


class SecretState(StrEnum):
    """How each secret setting appears: encrypted, in plain text, or missing."""

    ENCRYPTED = "encrypted"
    PLAINTEXT = "plaintext"
    MISSING = "missing"


@dataclass(frozen=True)
class StackInput:
    """The settings of one stack (namespace removed, secrets excluded) and the state of each secret.

    ``problems`` are settings that cannot be read at all (a setting given as a secret,
    say); validation reports them beside the spec's own.
    """

    settings: dict[str, Any]
    secret_states: dict[str, SecretState]
    problems: tuple[Problem, ...] = field(default=())


def decode_value(raw: str) -> Any:
    """Structured values reach the program as JSON strings; plain strings stay strings."""
    stripped = raw.strip()
    if stripped[:1] in ("{", "[") or stripped in ("true", "false") or stripped.lstrip("-").isdigit():
        try:
            return json.loads(stripped)
        except json.JSONDecodeError:
            return raw
    return raw


def decode_config(values: Mapping[str, str | None], secret_keys: Collection[str]) -> StackInput:
    """Decode an engine-style config map (``tizi:key`` → string) into a ``StackInput``.

    A value of ``None`` stands for an encrypted value the caller cannot decrypt (an offline
    reader of a stack file); only whether it is encrypted matters then.
    """
    settings: dict[str, Any] = {}
    states = {key: SecretState.MISSING for key in SECRET_KEYS}
    problems: list[Problem] = []
    for full_key in sorted(values):
        if not full_key.startswith(PREFIX):
            continue
        key = full_key.removeprefix(PREFIX)
        secret = full_key in secret_keys
        if key in SECRET_KEYS:
            states[key] = SecretState.ENCRYPTED if secret else SecretState.PLAINTEXT
        elif secret:
            problems.append(
                Problem(
                    key,
                    "(encrypted)",
                    f"only {', '.join(SECRET_KEYS)} may be secret; set this one in plain text",
                )
            )
        else:
            raw = values[full_key]
            settings[key] = decode_value(raw) if isinstance(raw, str) else raw
    return StackInput(settings=settings, secret_states=states, problems=tuple(problems))
