"""``tizi values``: the Helm values a stack's Kubernetes target passes, for teams using helm alone."""

from __future__ import annotations

from pathlib import Path

import click
import yaml

from components.problems import StackError
from components.sources.stack_file import StackFileError, read_stack_file
from components.targets.chart_values import chart_values
from components.targets.kinds import KINDS
from components.validation import validate_stack


@click.command()
@click.argument("stack_file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option(
    "--target", "target_name", help="Target name (default: the first kubernetes or knative target)."
)
@click.option(
    "--secret-name", default="", help="Existing Secret holding the API keys (default: <service>-api-keys)."
)
def values(stack_file: Path, target_name: str | None, secret_name: str) -> None:
    """Print the chart values of STACK_FILE's Kubernetes target as YAML (helm install -f -)."""
    try:
        valid = validate_stack(read_stack_file(stack_file))
    except (StackFileError, StackError) as error:
        raise click.ClickException(str(error)) from None
    clusters = [p for p in valid.placement.targets if KINDS[p.target.kind].chart]
    chosen = [p for p in clusters if target_name in (None, p.target.name)]
    if not chosen:
        raise click.ClickException(
            f"{stack_file} has no kubernetes or knative target named {target_name or '(any)'}"
        )
    placement = chosen[0]
    result = chart_values(valid.spec, placement.target, secret_name or None)
    click.echo(yaml.safe_dump(result, sort_keys=False), nl=False)
