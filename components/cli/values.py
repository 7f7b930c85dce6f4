"""``tizi values``: the Helm values a stack's Kubernetes target passes, for teams using helm alone."""

from __future__ import annotations

from pathlib import Path

import click
import yaml

from components.catalogue import TargetKind
from components.chart_values import chart_values
from components.problems import StackError
from components.stackfile import read_stack_file
from components.validation import SecretState, validate_settings


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
    parsed = read_stack_file(stack_file)
    try:
        valid = validate_settings(parsed.settings, {"apiKeys": SecretState.ENCRYPTED})
    except StackError as error:
        raise click.ClickException(str(error)) from None
    clusters = [
        p for p in valid.placement.targets if p.target.kind in (TargetKind.KUBERNETES, TargetKind.KNATIVE)
    ]
    chosen = [p for p in clusters if target_name in (None, p.target.name)]
    if not chosen:
        raise click.ClickException(
            f"{stack_file} has no kubernetes or knative target named {target_name or '(any)'}"
        )
    placement = chosen[0]
    result = chart_values(
        valid.spec,
        placement.target,
        secret_name or f"{valid.spec.name}-api-keys",
        knative=placement.target.kind is TargetKind.KNATIVE,
    )
    click.echo(yaml.safe_dump(result, sort_keys=False), nl=False)
