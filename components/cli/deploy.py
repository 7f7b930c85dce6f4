"""``tizi preview``, ``tizi up`` and ``tizi destroy``: the real engine, offline, one stack at a time."""

from __future__ import annotations

import os
from pathlib import Path

import click

from components.cli.output import emit_json

DEFAULT_STACK = os.environ.get("TIZI_STACK", "local")


def _stack_option(function):
    return click.option(
        "--stack",
        "stack_name",
        default=DEFAULT_STACK,
        show_default="$TIZI_STACK or local",
        help="Stack name; its settings are stacks/Pulumi.<stack>.yaml.",
    )(function)


def _work_dir_option(function):
    return click.option(
        "--work-dir",
        type=click.Path(file_okay=False, path_type=Path),
        default=None,
        help="Project folder holding Pulumi.yaml and stacks/ (default: this repository).",
    )(function)


def _stack(stack_name: str, work_dir: Path | None):
    from components.automation import REPO, select_stack  # imported late: keeps `tizi --help` fast

    return select_stack(stack_name, work_dir or REPO)


def _echo(line: str) -> None:
    click.echo(line.rstrip("\n"), err=True)


def curl_line(stack_name: str, endpoint: str) -> str:
    """A working curl command that reads the key from the stack instead of printing it."""
    return f'curl -s -H "Authorization: Bearer $(tizi key --stack {stack_name})" {endpoint}/v1/models'


@click.command()
@_stack_option
@_work_dir_option
def preview(stack_name: str, work_dir: Path | None) -> None:
    """Preview STACK with the real engine: validation and residency run before any resource."""
    result = _stack(stack_name, work_dir).preview(on_output=_echo)
    click.echo(f"preview of {stack_name}: {result.change_summary}")


@click.command()
@_stack_option
@_work_dir_option
@click.option("--json", "as_json", is_flag=True, help="Print the outputs as JSON.")
def up(stack_name: str, work_dir: Path | None, as_json: bool) -> None:
    """Deploy STACK for real and print its endpoints with a working curl line."""
    result = _stack(stack_name, work_dir).up(on_output=_echo)
    outputs = {name: value.value for name, value in result.outputs.items()}
    if as_json:
        emit_json({"summary": result.summary.resource_changes, "outputs": outputs})
        return
    click.echo(f"{stack_name}: {result.summary.result} {result.summary.resource_changes}")
    for target, endpoint in (outputs.get("endpoints") or {}).items():
        click.echo(f"  {target}: {endpoint}")
        if endpoint.startswith("http://127.0.0.1") or endpoint.startswith("http://localhost"):
            click.echo(f"    {curl_line(stack_name, endpoint)}")


@click.command()
@_stack_option
@_work_dir_option
@click.option("--index", default=0, show_default=True, help="Which key of tizi:apiKeys to print.")
def key(stack_name: str, work_dir: Path | None, index: int) -> None:
    """Print one API key of STACK (decrypted): for a curl line, never for a log."""
    from components.secrets import split_keys

    keys = split_keys(_stack(stack_name, work_dir).get_config("tizi:apiKeys").value)
    if not 0 <= index < len(keys):
        raise click.ClickException(f"{stack_name} has {len(keys)} key(s); --index {index} is out of range")
    click.echo(keys[index])


@click.command()
@_stack_option
@_work_dir_option
def destroy(stack_name: str, work_dir: Path | None) -> None:
    """Destroy everything STACK deployed."""
    result = _stack(stack_name, work_dir).destroy(on_output=_echo)
    click.echo(f"{stack_name}: destroyed ({result.summary.resource_changes})")
