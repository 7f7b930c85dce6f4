"""``tizi key``: print one decrypted API key of a stack, for a curl line (never for a log)."""

from __future__ import annotations

from pathlib import Path

import click

from components.cli.stack_options import selected_stack, stack_option, work_dir_option
from components.spec.secrets import split_keys


@click.command()
@stack_option
@work_dir_option
@click.option("--index", default=0, show_default=True, help="Which key of tizi:apiKeys to print.")
def key(stack_name: str, work_dir: Path | None, index: int) -> None:
    """Print one API key of STACK (decrypted): for a curl line, never for a log."""
    keys = split_keys(selected_stack(stack_name, work_dir).get_config("tizi:apiKeys").value)
    if not 0 <= index < len(keys):
        raise click.ClickException(f"{stack_name} has {len(keys)} key(s); --index {index} is out of range")
    click.echo(keys[index])
