"""``tizi preview``: the real engine's preview; validation and residency run before any resource."""

from __future__ import annotations

from pathlib import Path

import click

from components.cli.stack_options import echo_engine, selected_stack, stack_option, work_dir_option


@click.command()
@stack_option
@work_dir_option
def preview(stack_name: str, work_dir: Path | None) -> None:
    """Preview STACK with the real engine: validation and residency run before any resource."""
    result = selected_stack(stack_name, work_dir).preview(on_output=echo_engine)
    click.echo(f"preview of {stack_name}: {result.change_summary}")
