"""The one pass over a bundle: the signature first, then every part, as create wrote them.

Accepted is exactly what `create_bundle` writes: manifest.json first (at most MAX_MANIFEST
bytes), its signature (at most MAX_SIGNATURE bytes, valid for the public key given), the
manifest (UTF-8 JSON of the expected shape), then exactly the parts it lists, in its order,
each a regular file whose size and sha256 match, then the end-of-archive blocks and at most
one tar record of zero padding. Refused, each with one line naming what is wrong: an
unsigned bundle, a signature by another key or over another manifest, anything else in a
header (tarfmt.py), duplicate members, members not in the manifest or missing from the tar,
non-zero padding, and data after the end. Nothing is ever extracted to the file system by
name.

`_scan` opens the bundle once (after checking that it is a regular file, so a FIFO or a
device cannot block or feed it forever) and reads it front to back exactly once: the
signature is checked, every part is hashed as it passes and the image part is at the same
time decompressed (compression.py), into the spool when loading (load.py).
"""

from __future__ import annotations

import hashlib
import os
from pathlib import Path
from typing import Any

from minisign import PublicKey  # type: ignore[import-untyped]  # py-minisign ships no type information

from components.ops.bundle.compression import _read_image_part
from components.ops.bundle.errors import BundleError, _show
from components.ops.bundle.files import CHUNK, open_regular
from components.ops.bundle.manifest import (
    IMAGE_PART,
    MANIFEST,
    MAX_MANIFEST,
    MAX_MODEL_META,
    MODEL_META,
    SIGNATURE,
    _check_model_metadata,
    _parse_manifest,
)
from components.ops.bundle.signing import MAX_SIGNATURE, _check_signature, _public
from components.ops.bundle.spool import _Spool
from components.ops.bundle.tarfmt import (
    _ZERO_BLOCK,
    BLOCK,
    RECORD,
    _check_member,
    _Member,
    _next_member,
    _padding,
    _parse_header,
    _Reader,
)


def _read_signed_manifest(r: _Reader, public_key: PublicKey) -> tuple[bytes, dict[str, Any]]:
    """manifest.json, then its signature, checked before the manifest is parsed at all."""
    first = _next_member(r)
    if first is None:
        r.fail("an empty archive: not a tizi bundle")
    _check_member(r, first)
    if first.name != MANIFEST:
        r.fail(f"the first member is {_show(first.name)}, not manifest.json: not a tizi bundle")
    if first.size > MAX_MANIFEST:
        r.fail(f"manifest.json is {first.size} bytes, over the {MAX_MANIFEST}-byte cap")
    raw = r.exact(first.size, "manifest.json")
    _padding(r, first.size, "manifest.json")
    second = _next_member(r)
    if second is None or second.name != SIGNATURE:
        found = "the end of the archive" if second is None else _show(second.name)
        r.fail(f"unsigned bundle: manifest.json is followed by {found}, not {SIGNATURE}")
    _check_member(r, second)
    if second.size > MAX_SIGNATURE:
        r.fail(f"{SIGNATURE} is {second.size} bytes, over the {MAX_SIGNATURE}-byte cap")
    signature = r.exact(second.size, SIGNATURE)
    _padding(r, second.size, SIGNATURE)
    _check_signature(r, raw, signature, public_key)
    return raw, _parse_manifest(raw)


def _scan(path: Path, public_key: PublicKey, spool: _Spool | None = None) -> dict[str, Any]:
    """Read the bundle once, check everything, decompress image.tar into `spool`; return the
    manifest."""
    with open_regular(Path(path)) as f:
        on_disk = os.fstat(f.fileno()).st_size
        r = _Reader(f, Path(path))
        _, manifest = _read_signed_manifest(r, public_key)
        parts: list[dict[str, Any]] = manifest["parts"]
        listed = sum(p["size"] for p in parts)
        if listed > on_disk:
            r.fail(f"the manifest lists {listed} bytes of parts, the file holds {on_disk}: truncated")
        if spool is not None:
            spool.reserve(next(p["tar_size"] for p in parts if p["path"] == IMAGE_PART))
        names = {p["path"] for p in parts}
        seen: list[str] = []
        meta: bytes | None = None
        for want in parts:
            member = _next_member(r)
            if member is None:
                missing = [p["path"] for p in parts if p["path"] not in seen]
                more = f" and {len(missing) - 5} more" if len(missing) > 5 else ""
                r.fail(f"parts missing from the bundle (truncated?): {', '.join(missing[:5])}{more}")
            _check_member(r, member)
            _check_expected(r, member, want["path"], names, seen)
            if member.size != want["size"]:
                r.fail(f"{member.name}: size {member.size} differs from the manifest's {want['size']}")
            if member.name == MODEL_META and member.size > MAX_MODEL_META:
                r.fail(f"{MODEL_META} is {member.size} bytes, over the {MAX_MODEL_META}-byte cap")
            if member.name == IMAGE_PART:
                _read_image_part(r, member, want, spool)
            else:
                digest, kept = _hash_member(r, member, member.name == MODEL_META)
                _padding(r, member.size, member.name)
                if digest != want["sha256"]:
                    r.fail(f"{member.name}: sha256 mismatch: the bundle is corrupted")
                if kept is not None:
                    meta = kept
            seen.append(member.name)
        _check_end(r, names, seen)
    _check_model_metadata(manifest, meta)
    return manifest


def _check_expected(r: _Reader, member: _Member, want: str, names: set[str], seen: list[str]) -> None:
    if member.name in (MANIFEST, SIGNATURE) or member.name in seen:
        r.fail(f"duplicate member {_show(member.name)}")
    if member.name not in names:
        r.fail(f"member {_show(member.name)} is not in the manifest")
    if member.name != want:
        r.fail(f"member {member.name!r} is out of order: the manifest lists {want!r} next")


def _hash_member(r: _Reader, member: _Member, keep: bool) -> tuple[str, bytes | None]:
    h = hashlib.sha256()
    kept: list[bytes] = []
    remaining = member.size
    while remaining:
        block = r.exact(min(CHUNK, remaining), member.name)
        h.update(block)
        if keep:
            kept.append(block)
        remaining -= len(block)
    return h.hexdigest(), b"".join(kept) if keep else None


def _check_end(r: _Reader, names: set[str], seen: list[str]) -> None:
    """Two zero blocks, then zeros up to the end of the tar record, then nothing."""
    end = r.offset
    block = r.read(BLOCK)
    if len(block) < BLOCK:
        r.fail(f"the file ends at byte {r.offset} without the end-of-archive blocks: the bundle is truncated")
    if block != _ZERO_BLOCK:
        try:
            extra = _parse_header(r, block, end)
        except BundleError:
            r.fail(f"data after the last part at byte {end}")
        if extra.name in seen or extra.name in (MANIFEST, SIGNATURE):
            r.fail(f"duplicate member {_show(extra.name)}")
        r.fail(f"member {_show(extra.name)} after the last part is not in the manifest")
    second = r.read(BLOCK)
    if len(second) < BLOCK:
        r.fail(f"the file ends at byte {r.offset} inside the end-of-archive blocks: the bundle is truncated")
    if second != _ZERO_BLOCK:
        r.fail(f"data after the end-of-archive block at byte {end + BLOCK}")
    allowed = -(end + 2 * BLOCK) % RECORD
    rest = r.read(allowed + 1)
    if rest.count(0) != len(rest):
        first = end + 2 * BLOCK + len(rest) - len(rest.lstrip(bytes(1)))
        r.fail(f"data after the end of the archive (byte {first})")
    if len(rest) > allowed or len(rest) % BLOCK:
        r.fail(f"trailing bytes after the end of the archive at byte {end + 2 * BLOCK + allowed}")


def verify_bundle(path: Path, public_key: PublicKey | Path) -> dict[str, Any]:
    """Check the signature of the manifest with `public_key` (a key or a .pub file), then
    every part against it; return the manifest or raise BundleError."""
    return _scan(Path(path), _public(public_key))
