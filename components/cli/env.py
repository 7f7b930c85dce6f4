"""``tizi env``: the offline engine settings as shell exports, for plain ``pulumi`` commands.

    eval "$(scripts/toolchain.sh env)"     # pulumi, providers and helm on PATH
    eval "$(tizi env --stack local)"       # state backend and the stack's passphrase
    pulumi preview --stack local

The values are the ones ``tizi up`` uses (``ops.engine_env``); a passphrase already in the
environment is kept, never replaced.
"""

from __future__ import annotations

import shlex

import click

from components.cli.output import emit_json
from components.cli.stack_options import stack_option
from components.ops.engine_env import engine_settings


@click.command()
@stack_option
@click.option("--json", "as_json", is_flag=True, help="Print the variables as a JSON object.")
def env(stack_name: str, as_json: bool) -> None:
    """Print the engine settings for STACK as `export NAME=value` lines."""
    variables = engine_settings(stack_name).env()
    if as_json:
        emit_json(variables)
        return
    for name, value in variables.items():
        click.echo(f"export {name}={shlex.quote(value)}")
