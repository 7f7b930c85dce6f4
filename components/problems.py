"""One error type for every invalid stack setting, so all problems surface at once.

A platform team forking a ministry stack wants the whole list in one run, each line
naming the key, the value and what is allowed, before any resource is created.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class Problem:
    """One invalid setting: ``tizi:<key>: <value> is invalid: <allowed>``."""

    key: str
    value: Any
    allowed: str

    def __str__(self) -> str:
        return f"tizi:{self.key}: {render_value(self.value)} is invalid: {self.allowed}"


class StackError(ValueError):
    """Raised with every problem of a stack; its message lists them one per line."""

    def __init__(self, problems: list[Problem]) -> None:
        self.problems = list(problems)
        lines = "\n".join(f"  - {p}" for p in self.problems)
        super().__init__(f"{len(self.problems)} invalid stack setting(s):\n{lines}")


def render_value(value: Any) -> str:
    """Show a value as the user wrote it; never used for secrets (they are redacted first)."""
    if value is None:
        return "(missing)"
    if isinstance(value, str):
        return json.dumps(value, ensure_ascii=False)
    try:
        return json.dumps(value, ensure_ascii=False, sort_keys=True)
    except TypeError:
        return repr(value)
