"""`tizi bundle`: create (the default), verify and load offline bundles.

    tizi bundle -o site.tar --image tizi/inference-service:0.1.0 --spec stack.yaml
    tizi bundle verify site.tar
    DOCKER_HOST=ssh://edge-site tizi bundle load site.tar

Exit status 1 with a one-line reason when a bundle is refused.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import click
import yaml

from components.ops.bundle import BundleError, create_bundle, load_bundle, verify_bundle
from components.spec.service import REFERENCE_IMAGE


class _DefaultCreateGroup(click.Group):
    """A group whose default subcommand is `create` (`tizi bundle -o x.tar` creates)."""

    def parse_args(self, ctx: click.Context, args: list[str]) -> list[str]:
        if not args or (args[0] not in self.commands and args[0] not in ("--help", "-h")):
            args = ["create", *args]
        return super().parse_args(ctx, args)


def _load_spec(path: Path | None) -> dict[str, Any]:
    if path is None:
        return {}
    data = yaml.safe_load(path.read_text())
    if not isinstance(data, dict):
        raise click.ClickException(f"{path}: the spec must be a mapping")
    return data


@click.group(cls=_DefaultCreateGroup)
def bundle() -> None:
    """Offline bundles: the image, the model files and a manifest, in one file."""


@bundle.command()
@click.option("--image", default=REFERENCE_IMAGE, show_default=True, help="Image to bundle.")
@click.option(
    "-o", "--output", type=click.Path(dir_okay=False, path_type=Path),
    default=Path("tizi-bundle.tar"), show_default=True, help="Bundle file to write.",
)  # fmt: skip
@click.option(
    "--spec", type=click.Path(exists=True, dir_okay=False, path_type=Path),
    help="Service spec (YAML or JSON) recorded in the manifest.",
)  # fmt: skip
@click.option(
    "--model-dir", type=click.Path(exists=True, file_okay=False, path_type=Path),
    help="Model files to include (default: copied out of the image).",
)  # fmt: skip
@click.option("--docker-host", envvar="DOCKER_HOST", help="Engine holding the image.")
def create(
    image: str, output: Path, spec: Path | None, model_dir: Path | None, docker_host: str | None
) -> None:
    """Write a bundle (the default subcommand)."""
    try:
        manifest = create_bundle(image, output, _load_spec(spec), model_dir, docker_host)
    except BundleError as exc:
        raise click.ClickException(str(exc)) from None
    size = output.stat().st_size
    click.echo(f"wrote {output} ({size / 1e6:.1f} MB), image {image} {manifest['image']['id']}")
    for part in manifest["parts"]:
        click.echo(f"  {part['sha256']}  {part['size']:>12}  {part['path']}")


@bundle.command()
@click.argument("path", type=click.Path(dir_okay=False, path_type=Path))
@click.option("--json", "as_json", is_flag=True, help="Print the manifest as JSON.")
def verify(path: Path, as_json: bool) -> None:
    """Check every part's sha256 and size against the manifest."""
    try:
        manifest = verify_bundle(path)
    except BundleError as exc:
        raise click.ClickException(f"REFUSED: {exc}") from None
    if as_json:
        click.echo(json.dumps(manifest, indent=2, sort_keys=True))
        return
    click.echo(f"OK {path}: {manifest['image']['ref']} ({len(manifest['parts'])} parts verified)")


@bundle.command()
@click.argument("path", type=click.Path(dir_okay=False, path_type=Path))
@click.option("--docker-host", envvar="DOCKER_HOST", help="Engine to load into (ssh://...).")
def load(path: Path, docker_host: str | None) -> None:
    """Verify, then load the image into an engine; nothing is loaded from a bad bundle."""
    try:
        ref = load_bundle(path, docker_host)
    except BundleError as exc:
        raise click.ClickException(f"REFUSED: {exc}") from None
    click.echo(f"loaded {ref} into {docker_host or 'the default engine'}")
