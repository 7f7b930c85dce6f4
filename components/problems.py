"""One error type for every invalid stack setting, so all problems surface at once.

A platform team forking a ministry stack wants the whole list in one run, each line
naming the key, the value and what is allowed, before any resource is created.

Stack files come from anyone who can open a pull request, so a problem line is safe to
print on a terminal and in CI logs: keys and values are escaped (no control characters,
no ANSI escapes, no line breaks) and truncated to a short prefix, and a value tizi cannot
judge harmless (an unknown key's, a secret's) is never shown at all.
"""

from __future__ import annotations

import json
import unicodedata
from dataclasses import dataclass
from typing import Any

#: characters of a value shown in a problem line; the rest is summarised by its length
VALUE_PREFIX = 60
KEY_PREFIX = 80


class Hidden:
    """A value that must not be echoed (it may be a secret), shown by its shape only."""

    def __init__(self, what: str) -> None:
        self.what = what

    def __repr__(self) -> str:
        return f"({self.what})"

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Hidden) and other.what == self.what

    def __hash__(self) -> int:
        return hash(self.what)


def hidden(value: Any) -> Hidden:
    """The value's type and size, never its content."""
    if isinstance(value, str):
        return Hidden(f"hidden: {len(value)} characters")
    if isinstance(value, list | dict):
        return Hidden(f"hidden: {type(value).__name__} of {len(value)}")
    return Hidden(f"hidden: {type(value).__name__}")


@dataclass(frozen=True)
class Problem:
    """One invalid setting: ``tizi:<key>: <value> is invalid: <allowed>``."""

    key: str
    value: Any
    allowed: str

    def __str__(self) -> str:
        return (
            f"tizi:{safe_text(self.key, KEY_PREFIX)}: {render_value(self.value)} is invalid: {self.allowed}"
        )


class StackError(ValueError):
    """Raised with every problem of a stack; its message lists them one per line."""

    def __init__(self, problems: list[Problem]) -> None:
        self.problems = list(problems)
        lines = "\n".join(f"  - {p}" for p in self.problems)
        super().__init__(f"{len(self.problems)} invalid stack setting(s):\n{lines}")


def safe_text(text: str, limit: int) -> str:
    """Printable text: control and format characters escaped, cut to ``limit`` characters."""
    shown = "".join(
        ch if unicodedata.category(ch)[0] != "C" else ch.encode("unicode_escape").decode("ascii")
        for ch in text[:limit]
    )
    return shown if len(text) <= limit else f"{shown}… ({len(text)} characters)"


def render_value(value: Any) -> str:
    """Show a value as the user wrote it, escaped and cut short; never used for secrets
    (they are redacted or ``Hidden`` first)."""
    if value is None:
        return "(missing)"
    if isinstance(value, Hidden):
        return repr(value)
    if isinstance(value, str):
        text = json.dumps(value[:VALUE_PREFIX], ensure_ascii=False)
    else:
        try:
            text = json.dumps(value, ensure_ascii=False, sort_keys=True, default=repr)
        except (TypeError, ValueError, RecursionError):
            text = type(value).__name__
        if len(text) > VALUE_PREFIX:
            return f"{safe_text(text[:VALUE_PREFIX], VALUE_PREFIX)}… ({len(text)} characters)"
        return safe_text(text, VALUE_PREFIX)
    shown = safe_text(text, VALUE_PREFIX + 2)
    return shown if len(value) <= VALUE_PREFIX else f'{shown[:-1]}…" ({len(value)} characters)'
