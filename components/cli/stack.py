"""``tizi stack new``: render a ministry stack file from the template, checked before it is written."""

from __future__ import annotations

import os
import tempfile
from dataclasses import replace
from pathlib import Path

import click
from jinja2 import Environment, PackageLoader, StrictUndefined

from components.problems import StackError
from components.rules.catalogue import TargetKind
from components.rules.residency import DataClass, LegalBasisKind
from components.sources.stack_file import StackFileError, read_stack_file
from components.sources.stack_input import SecretState
from components.spec.runtime import REFERENCE_IMAGE
from components.spec.service import ENVIRONMENTS, LANGUAGES
from components.targets.kinds import KINDS, NewStackOptions
from components.validation import validate_stack

MODEL_LANGUAGES = ("ar", "ary", "zgh", "fr", "en")
PUBLIC_SERVICE_LANGUAGES = ("ar", "ary", "zgh", "fr")


def _environment() -> Environment:
    return Environment(
        loader=PackageLoader("components", "templates"),
        undefined=StrictUndefined,
        keep_trailing_newline=True,
        autoescape=False,  # YAML, not HTML; values are validated before rendering is written
    )


def render_stack(**fields: object) -> str:
    """Render the stack template with the given fields (see ``new`` for their meaning)."""
    return _environment().get_template("stack.yaml.j2").render(**fields)


@click.group()
def stack() -> None:
    """Create stack files."""


@stack.command("new")
@click.option("--ministry", required=True, help="Ministry or agency slug, e.g. justice.")
@click.option("--env", "environment", required=True, type=click.Choice(ENVIRONMENTS))
@click.option("--data-class", required=True, type=click.Choice([d.value for d in DataClass]))
@click.option("--region", required=True, help="Catalogue region id (see `tizi regions`).")
@click.option(
    "--target", "targets", multiple=True, required=True, type=click.Choice([t.value for t in TargetKind])
)
@click.option("--fallback-region", "fallback_regions", multiple=True, help="Fallback region (repeatable).")
@click.option(
    "--language",
    "languages",
    multiple=True,
    type=click.Choice(LANGUAGES),
    help="Language the service must serve (repeatable; default ar, ary, zgh, fr).",
)
@click.option("--image", default=REFERENCE_IMAGE, show_default=True)
@click.option("--context", default="", help="kubeconfig context for kubernetes/knative targets.")
@click.option("--edge-site", default="ma-edge-site", show_default=True, help="Edge site id ma-edge-<site>.")
@click.option(
    "--edge-host",
    default="unix:///var/run/docker.sock",
    show_default=True,
    help="Docker host URL of the edge site.",
)
@click.option("--koyeb-region", default="eu-paris", show_default=True)
@click.option("--legal-basis-kind", type=click.Choice([k.value for k in LegalBasisKind]))
@click.option(
    "--legal-basis-ref", default="", help="Reference of the legal basis, e.g. a CNDP authorisation number."
)
@click.option(
    "--stacks-dir",
    type=click.Path(file_okay=False, path_type=Path),
    default=lambda: os.environ.get("TIZI_STACKS_DIR", "stacks"),
    show_default="stacks or $TIZI_STACKS_DIR",
)
def new(
    ministry: str,
    environment: str,
    data_class: str,
    region: str,
    targets: tuple[str, ...],
    fallback_regions: tuple[str, ...],
    languages: tuple[str, ...],
    image: str,
    context: str,
    edge_site: str,
    edge_host: str,
    koyeb_region: str,
    legal_basis_kind: str | None,
    legal_basis_ref: str,
    stacks_dir: Path,
) -> None:
    """Render stacks/Pulumi.<ministry>-<env>.yaml, refusing invalid values and existing files."""
    stack_name = f"{ministry}-{environment}"
    path = stacks_dir / f"Pulumi.{stack_name}.yaml"
    options = NewStackOptions(
        context=context, edge_site=edge_site, edge_host=edge_host, koyeb_region=koyeb_region
    )
    legal_basis = {"kind": legal_basis_kind, "reference": legal_basis_ref} if legal_basis_kind else None
    text = render_stack(
        stack=stack_name,
        path=path,
        ministry=ministry,
        environment=environment,
        data_class=data_class,
        region=region,
        fallback_regions=list(fallback_regions),
        legal_basis=legal_basis,
        languages=list(languages or PUBLIC_SERVICE_LANGUAGES),
        service_name="inference",
        image=image,
        model_name="tizi-langid-ma",
        model_source="image:/opt/tizi/model",
        model_languages=list(MODEL_LANGUAGES),
        scaling_min=0 if all(KINDS[TargetKind(kind)].scale_to_zero for kind in targets) else 1,
        targets=[KINDS[TargetKind(kind)].new_entry(options) for kind in targets],
    )
    _validate_rendered(text)  # before the file system is touched: names are checked first
    stacks_dir.mkdir(parents=True, exist_ok=True)
    try:
        with open(path, "x", encoding="utf-8") as handle:  # "x": never clobber an existing file
            handle.write(text)
    except FileExistsError:
        click.echo(
            f"error: {path} exists; tizi never overwrites a stack file (edit it or remove it first)", err=True
        )
        raise SystemExit(1) from None
    click.echo(f"wrote {path}")
    click.echo("next:")
    click.echo(f"  pulumi stack init {stack_name} --secrets-provider passphrase")
    click.echo(f'  pulumi config set --secret tizi:apiKeys "$(openssl rand -hex 24)" --stack {stack_name}')
    if "koyeb" in targets:
        click.echo(f"  pulumi config set --secret koyeb:token <KOYEB_API_TOKEN> --stack {stack_name}")
    click.echo(f"  tizi check {path}")
    click.echo(f"  pulumi preview --stack {stack_name}")


def _validate_rendered(text: str) -> None:
    """Check the rendered file exactly as `tizi check` would, before anything is written."""
    with tempfile.NamedTemporaryFile("w", suffix=".yaml", encoding="utf-8", delete=False) as handle:
        handle.write(text)
    try:
        rendered = read_stack_file(Path(handle.name))
        # the keys are set after `pulumi stack init`; judge everything else
        validate_stack(replace(rendered, secret_states={"apiKeys": SecretState.ENCRYPTED}))
    except StackFileError as error:
        click.echo(f"error: the rendered stack is unreadable, nothing written: {error}", err=True)
        raise SystemExit(1) from None
    except StackError as error:
        click.echo("error: the stack would be invalid, nothing written:", err=True)
        for problem in error.problems:
            click.echo(f"  - {problem}", err=True)
        raise SystemExit(1) from None
    finally:
        os.unlink(handle.name)
