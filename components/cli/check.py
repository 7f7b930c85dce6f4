"""``tizi check``: validate stack files offline, every problem of every file at once."""

from __future__ import annotations

from pathlib import Path

import click

from components.cli.output import emit_json
from components.problems import StackError
from components.sources.stack_file import StackFileError, read_stack_file
from components.validation import validate_stack


def check_file(path: Path) -> list[str]:
    """The problems of one stack file as lines; empty when it is valid."""
    try:
        validate_stack(read_stack_file(path))
    except StackFileError as error:
        return [str(error)]
    except StackError as error:
        return [str(problem) for problem in error.problems]
    return []


@click.command()
@click.argument(
    "stack_files", nargs=-1, required=True, type=click.Path(exists=True, dir_okay=False, path_type=Path)
)
@click.option("--json", "as_json", is_flag=True, help="Print a JSON object per file.")
def check(stack_files: tuple[Path, ...], as_json: bool) -> None:
    """Validate STACK_FILES (Pulumi.<stack>.yaml); exit 0 when all are valid, 1 otherwise."""
    results = {str(path): check_file(path) for path in stack_files}
    if as_json:
        emit_json([{"file": f, "valid": not p, "problems": p} for f, p in results.items()])
    else:
        for file, problems in results.items():
            if problems:
                click.echo(f"FAIL {file}: {len(problems)} problem(s)")
                for problem in problems:
                    click.echo(f"  - {problem}")
            else:
                click.echo(f"ok   {file}")
    if any(results.values()):
        raise SystemExit(1)
