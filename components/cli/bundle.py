"""`tizi bundle`: keygen, create (the default), verify, load, and the images a site needs.

    tizi bundle keygen -s tizi-bundle.key -p tizi-bundle.pub     # once; the .pub goes to sites
    tizi bundle images stacks/Pulumi.llm-local.yaml       # the refs to bundle, one a line
    tizi bundle -o site.tar --secret-key tizi-bundle.key \\
        --image tizi/llm-server:0.1.0 --image tizi/model-smollm2:0.1.0 --spec spec.yaml
    tizi bundle verify --pubkey tizi-bundle.pub site.tar
    DOCKER_HOST=ssh://edge-site tizi bundle load --pubkey tizi-bundle.pub site.tar

verify and load need the public key (--pubkey, or $TIZI_BUNDLE_PUBKEY): there is no mode
that trusts an unsigned manifest, so there is nothing for an attacker to downgrade to. A
secret key's passphrase comes from $TIZI_BUNDLE_PASSPHRASE or a prompt on the terminal,
never from an option: argv is readable by every user of the machine.

Every failure (a refused bundle, a missing or wrong key, a file that is a directory, a FIFO
or unreadable, no docker CLI, a docker error, an output that cannot be written) is exit
status 1 with one line on stderr. Paths are therefore taken as plain paths, not
click.Path(exists=..., dir_okay=...), whose refusals are usage errors (exit 2, several
lines) and which would open a FIFO.
"""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import click
import yaml

from components.ops.bundle import (
    MAX_MANIFEST,
    PASSPHRASE_ENV,
    ZSTD_LEVEL,
    BundleError,
    create_bundle,
    generate_key_pair,
    load_bundle,
    public_key_id,
    read_public_key,
    read_secret_key,
    read_small_file,
    verify_bundle,
)
from components.problems import StackError
from components.sources.stack_file import StackFileError, read_stack_file
from components.spec.runtime import REFERENCE_IMAGE
from components.targets.gateway_plan import GATEWAY_IMAGE
from components.validation import validate_stack

PUBKEY_ENV = "TIZI_BUNDLE_PUBKEY"
SECRET_KEY_ENV = "TIZI_BUNDLE_SECRET_KEY"


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


def _stdin_is_terminal() -> bool:
    """Whether a passphrase can be asked; a function so tests can say yes."""
    return sys.stdin.isatty()


def _passphrase(confirm: bool) -> Callable[[], str]:
    """The passphrase source, called only when a key needs one: $TIZI_BUNDLE_PASSPHRASE,
    else a hidden prompt on the terminal (on stderr, so stdout stays the command's output)."""

    def ask() -> str:
        value = os.environ.get(PASSPHRASE_ENV)
        if value is not None:
            if not value:
                raise BundleError(f"{PASSPHRASE_ENV} is set but empty")
            return value
        if not _stdin_is_terminal():
            raise BundleError(
                f"the secret key needs a passphrase: set {PASSPHRASE_ENV} or run in a terminal to be asked"
            )
        try:
            answer: str = click.prompt(
                "Passphrase", hide_input=True, confirmation_prompt=confirm, err=True, type=str
            )
        except click.Abort:
            raise BundleError("no passphrase given") from None
        return answer

    return ask


def _public_key_path(pubkey: Path | None) -> Path:
    if pubkey is None:
        raise BundleError(
            f"no public key: pass --pubkey KEY.pub (or set {PUBKEY_ENV}); only signed bundles are accepted"
        )
    return pubkey


def stack_images(path: Path) -> list[str]:
    """The images a site running this stack needs, server first: the spec's image, for an
    `oci:` model source the model image, and the gateway's (every edge site runs one). The
    stack must pass `tizi check`: a bundle is made for a stack that deploys."""
    try:
        spec = validate_stack(read_stack_file(path)).spec
    except StackFileError as exc:
        raise BundleError(str(exc)) from None
    except StackError as exc:
        raise BundleError(f"{path}: " + "; ".join(str(p) for p in exc.problems)) from None
    images = [spec.image, spec.model.image, GATEWAY_IMAGE]
    return [ref for i, ref in enumerate(images) if ref and ref not in images[:i]]


def _fail(exc: BundleError, prefix: str = "") -> click.ClickException:
    return click.ClickException(f"{prefix}{exc}")


@click.group(cls=_DefaultCreateGroup)
def bundle() -> None:
    """Offline bundles: the images, the model files and a signed manifest, in one file."""


@bundle.command()
@click.option(
    "-s", "--secret-key", type=click.Path(path_type=Path),
    default=Path("tizi-bundle.key"), show_default=True, help="Secret key file to write (mode 0600).",
)  # fmt: skip
@click.option(
    "-p", "--public-key", type=click.Path(path_type=Path),
    default=Path("tizi-bundle.pub"), show_default=True, help="Public key file to write.",
)  # fmt: skip
@click.option(
    "--no-passphrase", is_flag=True,
    help=f"Leave the secret key unencrypted (default: a passphrase, from ${PASSPHRASE_ENV} or asked).",
)  # fmt: skip
def keygen(secret_key: Path, public_key: Path, no_passphrase: bool) -> None:
    """Make a minisign key pair for signing bundles (minisign -G compatible)."""
    try:
        passphrase = None if no_passphrase else _passphrase(confirm=True)()
        key_id = generate_key_pair(secret_key, public_key, passphrase)
    except BundleError as exc:
        raise _fail(exc) from None
    state = "unencrypted" if no_passphrase else "encrypted with the passphrase"
    click.echo(f"key {key_id}: secret key {secret_key} ({state}, mode 0600), public key {public_key}")


@bundle.command()
@click.argument("stack_file", type=click.Path(path_type=Path))
def images(stack_file: Path) -> None:
    """Print the images a site running STACK needs, one a line (for create's --image)."""
    try:
        refs = stack_images(stack_file)
    except BundleError as exc:
        raise _fail(exc) from None
    for ref in refs:
        click.echo(ref)


@bundle.command()
@click.option(
    "--image", "image_refs", multiple=True,
    help=f"Image to bundle; repeat for several (default: {REFERENCE_IMAGE}).",
)  # fmt: skip
@click.option(
    "-o", "--output", type=click.Path(path_type=Path),
    default=Path("tizi-bundle.tar"), show_default=True, help="Bundle file to write.",
)  # fmt: skip
@click.option(
    "--secret-key", type=click.Path(path_type=Path), envvar=SECRET_KEY_ENV,
    help=f"minisign secret key to sign with (or ${SECRET_KEY_ENV}); see `tizi bundle keygen`.",
)  # fmt: skip
@click.option(
    "--spec", type=click.Path(path_type=Path),
    help="Service spec (YAML or JSON) recorded in the manifest.",
)  # fmt: skip
@click.option(
    "--model-dir", type=click.Path(path_type=Path),
    help="Model files to include (default: copied out of the images that carry them).",
)  # fmt: skip
@click.option("--no-model-files", is_flag=True, help="Leave the model files out (they are in an image).")
@click.option(
    "--level", type=int, default=ZSTD_LEVEL, show_default=True, help="zstd level of the image part (1-22)."
)
@click.option("--docker-host", envvar="DOCKER_HOST", help="Engine holding the images.")
def create(
    image_refs: tuple[str, ...],
    output: Path,
    secret_key: Path | None,
    spec: Path | None,
    model_dir: Path | None,
    no_model_files: bool,
    level: int,
    docker_host: str | None,
) -> None:
    """Write a signed bundle (the default subcommand)."""
    refs = list(image_refs) or [REFERENCE_IMAGE]
    try:
        recorded = _load_spec(spec)
        if secret_key is None:
            raise BundleError(
                f"no --secret-key (or {SECRET_KEY_ENV}): bundles are signed; make a key pair "
                "with `tizi bundle keygen`"
            )
        if model_dir is not None and no_model_files:
            raise BundleError("--model-dir and --no-model-files contradict each other")
        key = read_secret_key(secret_key, _passphrase(confirm=False))
        with key:  # wiped on exit
            key_id = public_key_id(key.get_public_key())
            manifest = create_bundle(
                refs,
                output,
                key,
                recorded,
                model_dir,
                docker_host,
                model_files=not no_model_files,
                level=level,
            )
    except BundleError as exc:
        raise _fail(exc) from None
    try:
        size = output.stat().st_size
    except OSError:  # moved or removed already: the parts' sum is close enough for a summary
        size = sum(part["size"] for part in manifest["parts"])
    click.echo(f"wrote {output} ({size / 1e6:.1f} MB), signed by key {key_id}")
    for image in manifest["images"]:
        click.echo(f"  image {image['ref']} {image['id']}")
    for part in manifest["parts"]:
        click.echo(f"  {part['sha256']}  {part['size']:>12}  {part['path']}")


@bundle.command()
@click.argument("path", type=click.Path(path_type=Path))
@click.option("--pubkey", type=click.Path(path_type=Path), envvar=PUBKEY_ENV,
              help=f"minisign public key the bundle must be signed with (or ${PUBKEY_ENV}).")  # fmt: skip
@click.option("--json", "as_json", is_flag=True, help="Print the manifest as JSON.")
def verify(path: Path, pubkey: Path | None, as_json: bool) -> None:
    """Check the signature, then every part's sha256 and size against the manifest."""
    try:
        key = read_public_key(_public_key_path(pubkey))
        manifest = verify_bundle(path, key)
    except BundleError as exc:
        raise _fail(exc, "REFUSED: ") from None
    if as_json:
        click.echo(json.dumps(manifest, indent=2, sort_keys=True))
        return
    refs = ", ".join(image["ref"] for image in manifest["images"])
    click.echo(
        f"OK {path}: {refs} ({len(manifest['parts'])} parts verified), "
        f"signed by key {public_key_id(key)}, created {manifest.get('created', '?')}"
    )


@bundle.command()
@click.argument("path", type=click.Path(path_type=Path))
@click.option("--pubkey", type=click.Path(path_type=Path), envvar=PUBKEY_ENV,
              help=f"minisign public key the bundle must be signed with (or ${PUBKEY_ENV}).")  # fmt: skip
@click.option("--docker-host", envvar="DOCKER_HOST", help="Engine to load into (ssh://...).")
def load(path: Path, pubkey: Path | None, docker_host: str | None) -> None:
    """Verify, then load the images into an engine; nothing is loaded from a bad bundle."""
    try:
        key = read_public_key(_public_key_path(pubkey))
        refs = load_bundle(path, key, docker_host)
    except BundleError as exc:
        raise _fail(exc, "REFUSED: ") from None
    click.echo(f"loaded {', '.join(refs)} into {docker_host or 'the default engine'}")
