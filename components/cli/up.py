"""``tizi up``: deploy a stack with the real engine, then print its endpoints and a curl line."""

from __future__ import annotations

from pathlib import Path

import click

from components.cli.output import emit_json
from components.cli.stack_options import echo_engine, selected_stack, stack_option, work_dir_option


def curl_line(stack_name: str, endpoint: str) -> str:
    """A working curl command that reads the key from the stack instead of printing it."""
    return f'curl -s -H "Authorization: Bearer $(tizi key --stack {stack_name})" {endpoint}/v1/models'


@click.command()
@stack_option
@work_dir_option
@click.option("--json", "as_json", is_flag=True, help="Print the outputs as JSON.")
def up(stack_name: str, work_dir: Path | None, as_json: bool) -> None:
    """Deploy STACK for real and print its endpoints with a working curl line."""
    from components.ops.engine import up_or_clean  # imported late: keeps `tizi --help` fast

    result = up_or_clean(selected_stack(stack_name, work_dir), echo_engine)
    outputs = {name: value.value for name, value in result.outputs.items()}
    if as_json:
        emit_json({"summary": result.summary.resource_changes, "outputs": outputs})
        return
    click.echo(f"{stack_name}: {result.summary.result} {result.summary.resource_changes}")
    for target, endpoint in (outputs.get("endpoints") or {}).items():
        click.echo(f"  {target}: {endpoint}")
        if endpoint.startswith("http://127.0.0.1") or endpoint.startswith("http://localhost"):
            click.echo(f"    {curl_line(stack_name, endpoint)}")
