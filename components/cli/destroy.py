"""``tizi destroy``: remove everything a stack deployed."""

from __future__ import annotations

from pathlib import Path

import click

from components.cli.stack_options import echo_engine, selected_stack, stack_option, work_dir_option


@click.command()
@stack_option
@work_dir_option
def destroy(stack_name: str, work_dir: Path | None) -> None:
    """Destroy everything STACK deployed."""
    # show_secrets=False: the summary is read without decrypting the config (see up_or_clean)
    result = selected_stack(stack_name, work_dir).destroy(on_output=echo_engine, show_secrets=False)
    click.echo(f"{stack_name}: destroyed ({result.summary.resource_changes})")
