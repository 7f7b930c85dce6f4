"""What the engine subcommands share: the ``--stack`` and ``--work-dir`` options and the stack.

The engine modules are imported late, inside ``selected_stack``: ``tizi --help`` and the
offline commands stay fast and never load the Automation API.
"""

from __future__ import annotations

import os
import re
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

import click

from components.problems import safe_text

if TYPE_CHECKING:
    from pulumi import automation as auto

F = TypeVar("F", bound=Callable[..., Any])
DEFAULT_STACK = os.environ.get("TIZI_STACK", "local")


#: Pulumi's own rule for stack names; it also keeps the name a single, harmless file name part
STACK_NAME = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.-]{0,99}")


def _stack_name(ctx: click.Context, param: click.Parameter, value: str) -> str:
    if not STACK_NAME.fullmatch(value):
        shown = safe_text(value, 40)
        raise click.BadParameter(f"{shown!r} is not a stack name: 1-100 of A-Z a-z 0-9 _ . - (not first)")
    return value


def stack_option(function: F) -> F:
    """``--stack NAME``: default ``$TIZI_STACK`` or ``local``."""
    return click.option(
        "--stack",
        "stack_name",
        default=DEFAULT_STACK,
        show_default="$TIZI_STACK or local",
        callback=_stack_name,
        help="Stack name; its settings are stacks/Pulumi.<stack>.yaml.",
    )(function)


def work_dir_option(function: F) -> F:
    """``--work-dir DIR``: the project folder (default: this repository)."""
    return click.option(
        "--work-dir",
        type=click.Path(file_okay=False, path_type=Path),
        default=None,
        help="Project folder holding Pulumi.yaml and stacks/ (default: this repository).",
    )(function)


def selected_stack(stack_name: str, work_dir: Path | None) -> auto.Stack:
    """The stack, created or selected with the inline program and the offline settings."""
    from components.ops.engine import select_stack
    from components.ops.engine_env import REPO

    return select_stack(stack_name, work_dir or REPO)


def echo_engine(line: str) -> None:
    """The engine's own progress lines, on stderr so stdout stays the command's result."""
    click.echo(line.rstrip("\n"), err=True)
