"""Creating a bundle: check what is cheap, docker save, compress, sign, write, verify.

`create_bundle` checks everything it can before `docker save`, which takes minutes, and the
file appears at its output only once complete and verified by the same reader as `tizi
bundle verify` (verify.py), so no half-written, unreadable or unverifiable bundle is ever
left there.
"""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from minisign import SecretKey  # type: ignore[import-untyped]  # py-minisign ships no type information

from components.ops.bundle.compression import ZSTD_LEVEL, compress_image
from components.ops.bundle.docker import _docker, _docker_cli, _env, _inspect, image_id
from components.ops.bundle.errors import BundleError, _reason, _show
from components.ops.bundle.files import CHUNK, _not_regular
from components.ops.bundle.manifest import (
    _IMAGE_REF,
    FORMAT,
    IMAGE_PART,
    MANIFEST,
    MAX_IMAGES,
    MAX_MANIFEST,
    MODEL_PREFIX,
    SIGNATURE,
    _parse_manifest,
)
from components.ops.bundle.models import _gather_models, _model_sources
from components.ops.bundle.signing import sign_manifest
from components.ops.bundle.tarfmt import _write_tar
from components.ops.bundle.verify import _scan


def _check_output(out: Path) -> None:
    """Refuse an output we could only fail on after minutes of `docker save`, or must not
    replace (a directory, a device such as /dev/null, which os.replace would swap out)."""
    if out.name in ("", ".", ".."):
        raise BundleError(f"{out}: not a file name")
    anchor = out.parent
    try:
        while not anchor.exists() and anchor != anchor.parent:
            anchor = anchor.parent
        name_max = os.pathconf(anchor, "PC_NAME_MAX")
    except (OSError, ValueError):
        name_max = 255
    for name in (*out.parent.parts, out.name):
        if len(os.fsencode(name)) > name_max:
            raise BundleError(
                f"{_show(name, 40)}: file name too long ({len(os.fsencode(name))} bytes, "
                f"the file system allows {name_max})"
            )
    try:
        kind = _not_regular(os.stat(out).st_mode)
    except FileNotFoundError:
        kind = None
    except OSError as exc:
        raise BundleError(f"{out}: {_reason(exc)}") from None
    if kind:
        raise BundleError(f"{out} is {kind}; the bundle must be written to a file")


def _sha256_file(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(CHUNK), b""):
            h.update(block)
    return h.hexdigest()


def _check_images_arg(images: Sequence[str]) -> list[str]:
    refs = list(images)
    if not 1 <= len(refs) <= MAX_IMAGES:
        raise BundleError(f"{len(refs)} images given; a bundle holds 1 to {MAX_IMAGES}")
    for i, ref in enumerate(refs):
        if not _IMAGE_REF.fullmatch(ref):
            raise BundleError(f"{_show(ref)} is not an image reference")
        if ref in refs[:i]:
            raise BundleError(f"the image {ref} is given twice")
    return refs


def create_bundle(
    images: Sequence[str],
    out: Path,
    secret_key: SecretKey,
    spec: Mapping[str, Any] | None = None,
    model_dir: Path | None = None,
    docker_host: str | None = None,
    *,
    model_files: bool = True,
    level: int = ZSTD_LEVEL,
) -> dict[str, Any]:
    """Write a bundle of `images` (read from the engine at docker_host) to `out`, signed
    with `secret_key` (already decrypted: a passphrase is asked before, not after minutes of
    `docker save`).

    The model files come from `model_dir`, or out of the images that carry them (see
    `model_path_of`), or none with model_files=False. Everything that can be checked before
    `docker save` (which takes minutes) is checked first: refs, output, spec, key, level,
    the model dir, and that the engine has every image. The file appears at `out` only once
    complete and verified by the same reader as `tizi bundle verify`, with the public half
    of the key (written beside it, then renamed), so no half-written, unreadable or
    unverifiable bundle is ever left at `out`.
    """
    refs = _check_images_arg(images)
    out = Path(out)
    _check_output(out)
    spec = dict(spec or {})
    try:
        json.dumps(spec, allow_nan=False)
    except (TypeError, ValueError, RecursionError) as exc:
        raise BundleError(f"the spec cannot be written as JSON: {exc}") from None
    if isinstance(level, bool) or not isinstance(level, int) or not 1 <= level <= 22:
        raise BundleError(f"zstd level {_show(level)}: levels run from 1 to 22")
    if secret_key.is_wiped() or secret_key.is_encrypted():
        raise BundleError("the secret key is not usable: decrypt it with its passphrase first")
    public_key = secret_key.get_public_key()
    _docker_cli(_env(docker_host))
    sources = _model_sources(Path(model_dir)) if model_dir is not None else None
    try:
        out.parent.mkdir(parents=True, exist_ok=True)
        private = tempfile.TemporaryDirectory(
            dir=out.parent, prefix=".tizi-bundle-", ignore_cleanup_errors=True
        )
    except OSError as exc:
        raise BundleError(f"cannot write {out}: {_reason(exc)}") from None
    with private as tmp:
        work = Path(tmp)
        image_tar = work / "image.tar"
        facts = [(ref, *_inspect(ref, docker_host)) for ref in refs]  # every image there, first
        try:
            with open(image_tar, "xb") as f:
                _docker(["save", *refs], docker_host, timeout=None, stdout=f)
            for ref, before, _ in facts:
                after = image_id(ref, docker_host)
                if after != before:
                    raise BundleError(f"{ref} changed while it was saved ({before} then {after}): try again")
            models = _gather_models(work, facts, sources, model_files, docker_host)
            packed = work / IMAGE_PART
            tar_size, tar_sha256 = compress_image(image_tar, packed, level)
            image_tar.unlink()  # the compressed copy is all that is needed from here on
            parts = [(IMAGE_PART, packed, "image")]
            parts += [(MODEL_PREFIX + p.name, p, "model") for p in models]
            entries: list[dict[str, Any]] = []
            for name, p, kind in parts:
                entry = {"path": name, "kind": kind, "size": p.stat().st_size, "sha256": _sha256_file(p)}
                if kind == "image":
                    entry.update(tar_size=tar_size, tar_sha256=tar_sha256)
                entries.append(entry)
            now = int(time.time())
            manifest = {
                "format": FORMAT,
                "created": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(now)),
                "images": [{"ref": ref, "id": found} for ref, found, _ in facts],
                "spec": spec,
                "parts": entries,
            }
            try:
                raw = json.dumps(manifest, indent=2, sort_keys=True, allow_nan=False).encode()
            except (TypeError, ValueError) as exc:
                raise BundleError(f"the spec cannot be written as JSON: {exc}") from None
            if len(raw) > MAX_MANIFEST:
                raise BundleError(f"the manifest would be {len(raw)} bytes, over the {MAX_MANIFEST}-byte cap")
            _parse_manifest(raw)  # the ids from the engine and the names are what verify accepts
            partial = work / "bundle.partial"
            sizes = [(name, p, p.stat().st_size) for name, p, _ in parts]
            _write_tar(partial, [(MANIFEST, raw), (SIGNATURE, sign_manifest(raw, secret_key, now))], sizes)
            _scan(partial, public_key)
            os.replace(partial, out)
        except OSError as exc:
            raise BundleError(f"cannot write {out}: {_reason(exc)}") from None
    return manifest
