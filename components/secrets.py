"""API keys: parsed from one encrypted setting, handed to targets as files, never logged.

``tizi:apiKeys`` holds one or more keys separated by commas or newlines, so a rotation
is "add the new key, deploy, move clients, remove the old key, deploy" with both keys
valid in between.  Targets only handle key text inside ``Output.apply`` (values stay
secret in state); validation reduces it to counts and lengths that reveal nothing.
No Pulumi import here: the offline ``tizi`` commands load this module.
"""

from __future__ import annotations

import re

from components.problems import Problem

MAX_KEYS = 8
MIN_KEY_LENGTH = 16
_KEY = re.compile(r"^[A-Za-z0-9._~+/=-]{16,256}$")
_SEPARATORS = re.compile(r"[,\n]+")


def split_keys(raw: str) -> list[str]:
    """Keys in the order written, blanks dropped."""
    return [key.strip() for key in _SEPARATORS.split(raw) if key.strip()]


def key_problems(raw: str) -> list[Problem]:
    """Shape problems of the keys, described without ever quoting a key."""
    keys = split_keys(raw)
    problems = []
    if not keys:
        problems.append(Problem("apiKeys", "(redacted)", "must hold at least one key"))
    if len(keys) > MAX_KEYS:
        problems.append(
            Problem("apiKeys", f"({len(keys)} keys, redacted)", f"must hold at most {MAX_KEYS} keys")
        )
    for index, key in enumerate(keys):
        if not _KEY.match(key):
            problems.append(
                Problem(
                    f"apiKeys[{index}]",
                    f"(redacted, {len(key)} characters)",
                    f"each key must be {MIN_KEY_LENGTH}-256 characters of A-Z a-z 0-9 . _ ~ + / = -",
                )
            )
    if len(set(keys)) != len(keys):
        problems.append(Problem("apiKeys", "(redacted)", "must not repeat a key"))
    return problems


def key_file_name(index: int) -> str:
    """Stable file names: rotation changes contents, the service re-reads the directory."""
    return f"key-{index}"
