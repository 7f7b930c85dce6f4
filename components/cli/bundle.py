"""`tizi bundle`: create (the default), verify and load offline bundles.

    tizi bundle -o site.tar --image tizi/inference-service:0.1.0 --spec stack.yaml
    tizi bundle verify site.tar
    DOCKER_HOST=ssh://edge-site tizi bundle load site.tar

Every failure (a refused bundle, a file that is a directory, a FIFO or unreadable, no docker
CLI, a docker error, an output that cannot be written) is exit status 1 with one line on
stderr. Paths are therefore taken as plain paths, not click.Path(exists=..., dir_okay=...),
whose refusals are usage errors (exit 2, several lines) and which would open a FIFO.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import click
import yaml

from components.ops.bundle import (
    MAX_MANIFEST,
    BundleError,
    create_bundle,
    load_bundle,
    read_small_file,
    verify_bundle,
)
from components.spec.runtime import REFERENCE_IMAGE


class _DefaultCreateGroup(click.Group):
    """A group whose default subcommand is `create` (`tizi bundle -o x.tar` creates)."""

    def parse_args(self, ctx: click.Context, args: list[str]) -> list[str]:
        if not args or (args[0] not in self.commands and args[0] not in ("--help", "-h")):
            args = ["create", *args]
        return super().parse_args(ctx, args)


class _NoAliasLoader(yaml.SafeLoader):
    """safe_load without aliases: a few nested aliases expand exponentially when the spec is
    written out as JSON (the "billion laughs"), and a spec has no use for them."""

    def compose_node(self, parent: yaml.Node | None, index: int) -> yaml.Node | None:
        if self.check_event(yaml.AliasEvent):
            raise yaml.YAMLError("aliases (*name) are not allowed in a spec")
        return super().compose_node(parent, index)


def _load_spec(path: Path | None) -> dict[str, Any]:
    """The spec recorded in the manifest: a regular file (a FIFO would block), at most the
    manifest's cap, UTF-8 YAML or JSON, a mapping."""
    if path is None:
        return {}
    raw = read_small_file(path, "spec file", MAX_MANIFEST)
    try:
        data = yaml.load(raw.decode("utf-8"), Loader=_NoAliasLoader)  # a SafeLoader
    except UnicodeDecodeError as exc:
        raise BundleError(f"{path}: not valid UTF-8 (byte {exc.start})") from None
    except yaml.YAMLError as exc:
        raise BundleError(f"{path}: not valid YAML: {exc}") from None
    except RecursionError:
        raise BundleError(f"{path}: nested too deeply") from None
    if not isinstance(data, dict):
        raise BundleError(f"{path}: the spec must be a mapping")
    return data


@click.group(cls=_DefaultCreateGroup)
def bundle() -> None:
    """Offline bundles: the image, the model files and a manifest, in one file."""


@bundle.command()
@click.option("--image", default=REFERENCE_IMAGE, show_default=True, help="Image to bundle.")
@click.option(
    "-o", "--output", type=click.Path(path_type=Path),
    default=Path("tizi-bundle.tar"), show_default=True, help="Bundle file to write.",
)  # fmt: skip
@click.option(
    "--spec", type=click.Path(path_type=Path),
    help="Service spec (YAML or JSON) recorded in the manifest.",
)  # fmt: skip
@click.option(
    "--model-dir", type=click.Path(path_type=Path),
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
    try:
        size = output.stat().st_size
    except OSError:  # moved or removed already: the parts' sum is close enough for a summary
        size = sum(part["size"] for part in manifest["parts"])
    click.echo(f"wrote {output} ({size / 1e6:.1f} MB), image {image} {manifest['image']['id']}")
    for part in manifest["parts"]:
        click.echo(f"  {part['sha256']}  {part['size']:>12}  {part['path']}")


@bundle.command()
@click.argument("path", type=click.Path(path_type=Path))
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
@click.argument("path", type=click.Path(path_type=Path))
@click.option("--docker-host", envvar="DOCKER_HOST", help="Engine to load into (ssh://...).")
def load(path: Path, docker_host: str | None) -> None:
    """Verify, then load the image into an engine; nothing is loaded from a bad bundle."""
    try:
        ref = load_bundle(path, docker_host)
    except BundleError as exc:
        raise click.ClickException(f"REFUSED: {exc}") from None
    click.echo(f"loaded {ref} into {docker_host or 'the default engine'}")
