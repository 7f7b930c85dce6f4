"""``tizi needs``: the parts of the offline toolchain a stack's targets need.

``make up`` asks it before building, so an edge-only stack never waits for the
Kubernetes provider and helm: ``scripts/toolchain.sh ensure $(tizi needs --stack local)``.
"""

from __future__ import annotations

from pathlib import Path

import click

from components.cli.stack_options import stack_option
from components.ops.engine_env import REPO, stack_file
from components.rules.catalogue import TargetKind
from components.sources.stack_file import StackFileError, read_stack_file
from components.targets.kinds import KINDS

#: every stack needs the engine itself
BASE_TOOLS = ("pulumi",)


def tools_for(path: Path) -> list[str]:
    """The toolchain parts for the target kinds named in a stack file, in build order."""
    targets = read_stack_file(path).settings.get("targets")
    tools = list(BASE_TOOLS)
    for item in targets if isinstance(targets, list) else []:
        kind = item.get("kind") if isinstance(item, dict) else None
        if kind in {k.value for k in KINDS}:
            tools += [t for t in KINDS[TargetKind(kind)].tools if t not in tools]
    return tools


@click.command()
@stack_option
def needs(stack_name: str) -> None:
    """Print the toolchain parts STACK needs, one line (for scripts/toolchain.sh ensure)."""
    try:
        click.echo(" ".join(tools_for(stack_file(stack_name, REPO))))
    except StackFileError as error:
        raise click.ClickException(str(error)) from None
