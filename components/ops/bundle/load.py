"""Verify-then-load: one read of the bundle, then `docker load` of exactly what was hashed.

Verify-then-load reads ONE stream. `load_bundle` opens the bundle once (after checking that
it is a regular file, so a FIFO or a device cannot block or feed it forever) and reads it
front to back exactly once (verify.py): the signature is checked, every part is hashed as it
passes and the image part is at the same time decompressed into the spool (spool.py), the
decompressed bytes hashed too and capped at the signed tar_size (compression.py). Only when
every size, digest and the end of the archive have checked out is the spooled copy handed,
through the same descriptor, to `docker load` on stdin. The bundle path is never opened
again, so a file changed or replaced after the check cannot be loaded: the engine gets byte
for byte what was hashed. Piping into `docker load` while hashing would avoid the copy, but
docker load has no "commit only if the digest matches" step: a corrupted image would already
be in the engine when the mismatch shows. The copy costs one decompressed image.tar under
$TMPDIR for the duration of the load (spool.py).
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

from minisign import PublicKey  # type: ignore[import-untyped]  # py-minisign ships no type information

from components.ops.bundle.docker import _docker_cli, _docker_load, _env, image_id
from components.ops.bundle.errors import BundleError, _reason, _show
from components.ops.bundle.signing import _public
from components.ops.bundle.spool import _Spool
from components.ops.bundle.verify import _scan


def load_bundle(path: Path, public_key: PublicKey | Path, docker_host: str | None = None) -> list[str]:
    """Verify (signature, then every part), then `docker load` the verified copy into the
    engine at docker_host; return the image refs. One read of the file (see the module
    docstring): an unsigned or wrongly signed bundle, a bad one, or one changed after the
    check, loads nothing."""
    key = _public(public_key)
    _docker_cli(_env(docker_host))
    try:
        private = tempfile.TemporaryDirectory(prefix="tizi-load-", ignore_cleanup_errors=True)
    except OSError as exc:  # gettempdir() itself fails when no candidate is usable
        where = tempfile.tempdir or os.environ.get("TMPDIR") or "any temporary directory"
        raise BundleError(f"cannot create a private directory in {where}: {_reason(exc)}") from None
    with private as directory:
        spool = _Spool(Path(directory))
        with spool.file:
            manifest = _scan(Path(path), key, spool)
            _docker_load(spool.file, docker_host)
    for image in manifest["images"]:
        loaded = image_id(image["ref"], docker_host)
        if loaded != image["id"]:
            raise BundleError(
                f"loaded {image['ref']} has id {_show(loaded)}, the manifest says {image['id']}"
            )
    return [image["ref"] for image in manifest["images"]]
