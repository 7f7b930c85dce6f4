"""Read typed values out of nested stack settings, recording a Problem instead of raising.

The spec reader and the target reader share it, so every setting is checked the same way
and every problem of a stack is collected before anything fails.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from components.problems import Problem, hidden

# Patterns are applied with ``fullmatch``: ``$`` alone would let a trailing newline through.
SLUG = re.compile(r"^[a-z]([a-z0-9-]{0,28}[a-z0-9])?$")
DNS_LABEL = re.compile(r"^[a-z]([a-z0-9-]{0,38}[a-z0-9])?$")
REGION_ID = re.compile(r"^[a-z]{2}-[a-z0-9-]{2,60}$")


class SettingsReader:
    """Reads typed values from nested settings, recording a Problem instead of raising."""

    def __init__(self, settings: Mapping[str, Any]) -> None:
        self.settings = settings
        self.problems: list[Problem] = []

    def fail(self, key: str, value: Any, allowed: str) -> None:
        """Record one problem; reading goes on so every problem of a stack is reported."""
        self.problems.append(Problem(key, value, allowed))

    def section(self, key: str) -> Mapping[str, Any]:
        value = self.settings.get(key, {})
        if value is None:
            return {}
        if not isinstance(value, Mapping):
            self.fail(key, value, "must be a mapping")
            return {}
        return value

    def unknown(self, key: str, section: Mapping[str, Any], allowed: tuple[str, ...]) -> None:
        """Report keys outside ``allowed``; their values are never shown (a mistyped
        ``apiKey:`` may hold a key)."""
        for name in section:
            if name not in allowed:
                self.fail(
                    f"{key}.{name}" if key else str(name),
                    hidden(section[name]),
                    f"unknown key; allowed keys: {', '.join(allowed)}",
                )

    def string(
        self, key: str, value: Any, pattern: re.Pattern[str] | None, allowed: str, default: str | None = None
    ) -> str:
        if value is None and default is not None:
            return default
        if not isinstance(value, str) or (pattern is not None and not pattern.fullmatch(value)):
            self.fail(key, value, allowed)
            return default or ""
        return value

    def choice(self, key: str, value: Any, choices: tuple[str, ...], default: str | None = None) -> str:
        if value is None and default is not None:
            return default
        if value not in choices:
            self.fail(key, value, f"must be one of {', '.join(choices)}")
            return default or ""
        return value

    def integer(
        self, key: str, value: Any, minimum: int, maximum: int | None = None, default: int | None = None
    ) -> int:
        if value is None and default is not None:
            return default
        bounds = f">= {minimum}" if maximum is None else f"between {minimum} and {maximum}"
        if (
            isinstance(value, bool)
            or not isinstance(value, int)
            or value < minimum
            or (maximum is not None and value > maximum)
        ):
            self.fail(key, value, f"must be an integer {bounds}")
            return default if default is not None else minimum
        return value

    def boolean(self, key: str, value: Any, default: bool) -> bool:
        if value is None:
            return default
        if not isinstance(value, bool):
            self.fail(key, value, "must be true or false")
            return default
        return value

    def strings(self, key: str, value: Any, default: tuple[str, ...] = ()) -> tuple[str, ...]:
        if value is None:
            return default
        if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
            self.fail(key, value, "must be a list of strings")
            return default
        return tuple(value)
