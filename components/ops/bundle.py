"""Offline bundles: one file a technician carries to a site with no connectivity.

A bundle is an uncompressed tar (the image layers are already compressed or incompressible):

    manifest.json          first member, so it is read before anything else
    image.tar              `docker save` of the service image
    model/<files>          the model files baked into the image, for audit and checks

manifest.json holds the format version, the image reference and id, the path, kind, sha256
and size of every part, and the service spec dict the bundle was made for. No registry is
involved anywhere.

Reading is strict, because a bundle arrives from outside (a USB stick, a file share) and the
reader runs as whoever may talk to the engine. The tar is parsed here, one 512-byte header
at a time, rather than by `tarfile`, whose job is to be lenient: it skips bad blocks, accepts
links, devices and GNU extensions, ignores what follows the archive, and has many ways to
fail. Accepted is exactly what `create_bundle` writes: manifest.json first (at most
MAX_MANIFEST bytes, UTF-8 JSON of the expected shape), then exactly the parts it lists, in
its order, each a regular file whose size and sha256 match, then the end-of-archive blocks
and at most one tar record of zero padding. Refused, each with one line naming what is
wrong: anything else in a header (links, devices, FIFOs, directories, GNU and global pax
headers, sparse files, `..` or absolute names, a bad checksum), duplicate members, members
not in the manifest or missing from the tar, non-zero padding, and data after the end.
Nothing is ever extracted to the file system by name.

Verify-then-load reads ONE stream. `load_bundle` opens the bundle once (after checking that
it is a regular file, so a FIFO or a device cannot block or feed it forever) and reads it
front to back exactly once: every part is hashed as it passes and the image part is at the
same time copied into a spool, an unnamed temporary file (mode 0600) in a private directory
(mode 0700) under $TMPDIR. Only when every size, digest and the end of the archive have
checked out is the spooled copy handed, through the same descriptor, to `docker load` on
stdin. The bundle path is never opened again, so a file changed or replaced after the check
cannot be loaded: the engine gets byte for byte what was hashed. Piping into `docker load`
while hashing would avoid the copy, but docker load has no "commit only if the digest
matches" step: a corrupted image would already be in the engine when the mismatch shows.
Disk cost: one extra copy of image.tar (its size, from the manifest, is checked against the
free space of $TMPDIR before copying; set TMPDIR to a disk with room) for the duration of
the load. The copy goes when load returns, fails or is interrupted; being unnamed, it goes
even on SIGKILL (only the empty private directory would stay).

This is integrity, not authenticity: whoever can rewrite the file can rewrite the manifest.
Signing the manifest is the next step when bundles travel through untrusted hands.
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import json
import math
import os
import re
import shutil
import stat
import subprocess
import tarfile
import tempfile
import time
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Any, BinaryIO, NoReturn

FORMAT = "tizi-bundle/1"
MANIFEST = "manifest.json"
IMAGE_PART = "image.tar"
MODEL_PREFIX = "model/"
MODEL_META = MODEL_PREFIX + "model.json"
DEFAULT_MODEL_PATH = "/opt/tizi/model"
CHUNK = 1 << 20
BLOCK = 512
#: tar's default record (blocking factor 20): writers pad the archive to a multiple of it.
RECORD = 20 * BLOCK
#: A manifest is a few KiB; the cap bounds what is parsed before a single digest is checked.
MAX_MANIFEST = 1 << 20
#: One image and the files of one model directory; more is not a bundle tizi made.
MAX_PARTS = 256
#: 1 TiB: far above any image, low enough that sizes stay plain integers everywhere.
MAX_PART_SIZE = 1 << 40
#: pax records tarfile writes are a few hundred bytes (a long path, an mtime).
MAX_PAX = 64 << 10
MAX_MODEL_META = 1 << 20
#: Seconds for the short docker calls (inspect, create, cp, rm); save and load are not capped.
DOCKER_TIMEOUT = 300
MANIFEST_FIELDS = frozenset({"format", "created", "image", "spec", "parts"})
PART_FIELDS = frozenset({"path", "kind", "size", "sha256"})

_ZERO_BLOCK = bytes(BLOCK)
_SAFE_NAME = re.compile(r"[A-Za-z0-9_][A-Za-z0-9._+-]{0,127}")
_SHA256 = re.compile(r"[0-9a-f]{64}")
_IMAGE_ID = re.compile(r"sha256:[0-9a-f]{64}")
_IMAGE_REF = re.compile(r"[A-Za-z0-9][A-Za-z0-9._/:@-]{0,511}")
_OCTAL = re.compile(rb"[0-7]+")
_DECIMAL = re.compile(r"[0-9]{1,20}")
_PAX_LENGTH = re.compile(rb"[1-9][0-9]{0,19}")
#: pax records that only describe the member (times, owners) or say what the header says.
_PAX_ALLOWED = frozenset({"path", "size", "mtime", "atime", "ctime", "uid", "gid", "uname", "gname"})
_REGULAR = (b"0", b"\0")
_TYPES = {
    b"1": "a hard link", b"2": "a symbolic link", b"3": "a character device",
    b"4": "a block device", b"5": "a directory", b"6": "a FIFO", b"7": "a contiguous file",
    b"g": "a global pax header", b"L": "a GNU long-name header", b"K": "a GNU long-link header",
    b"S": "a GNU sparse file", b"V": "a volume label", b"M": "a multi-volume continuation",
    b"D": "a GNU directory dump", b"x": "a pax header",
}  # fmt: skip


class BundleError(Exception):
    """The bundle cannot be trusted or used; the message says why, on one line.

    The message is what an operator reads on stderr, so newlines (from docker's stderr, from
    a hostile name) are folded here, once, for every error path.
    """

    def __init__(self, message: str) -> None:
        super().__init__(" ".join(str(message).split()))


def _reason(exc: OSError) -> str:
    """The errno text alone ("Permission denied"): the caller names the path once."""
    return exc.strerror or str(exc)


def _show(value: object, limit: int = 80) -> str:
    """A hostile value for a message: repr escapes control characters, the cap bounds it."""
    text = repr(value)
    return text if len(text) <= limit else text[: limit - 1] + "…"


# -- files ---------------------------------------------------------------------------------


def _not_regular(mode: int) -> str | None:
    for test, kind in (
        (stat.S_ISDIR, "a directory"), (stat.S_ISFIFO, "a FIFO"),
        (stat.S_ISCHR, "a character device"), (stat.S_ISBLK, "a block device"),
        (stat.S_ISSOCK, "a socket"),
    ):  # fmt: skip
        if test(mode):
            return kind
    return None if stat.S_ISREG(mode) else "not a regular file"


def open_regular(path: Path, what: str = "bundle file") -> io.FileIO:
    """Open `path` for reading only if it is a regular file; BundleError otherwise.

    The type is checked before opening because opening a FIFO blocks until a writer comes and
    a device such as /dev/zero never ends. The open is non-blocking and the type is checked
    again on the descriptor, so a FIFO swapped in between cannot block us either.
    """
    try:
        kind = _not_regular(os.stat(path).st_mode)
    except OSError as exc:
        raise BundleError(f"{path}: {_reason(exc)}") from None
    if kind:
        raise BundleError(f"{path} is {kind}, not a {what}")
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | os.O_NOCTTY | os.O_CLOEXEC)
    except OSError as exc:
        raise BundleError(f"{path}: cannot open: {_reason(exc)}") from None
    try:
        kind = _not_regular(os.fstat(fd).st_mode)
        if kind:
            raise BundleError(f"{path} is {kind}, not a {what}")
        os.set_blocking(fd, True)
        return os.fdopen(fd, "rb", buffering=0)
    except BaseException:
        os.close(fd)
        raise


def read_small_file(path: Path, what: str, cap: int) -> bytes:
    """The whole of a small regular file (a spec), refused over `cap` bytes, one-line errors."""
    with open_regular(path, what) as f:
        try:
            data = f.read(cap + 1)
        except OSError as exc:
            raise BundleError(f"{path}: cannot read: {_reason(exc)}") from None
    if len(data) > cap:
        raise BundleError(f"{path}: over {cap} bytes, too large for a {what}")
    return data


class _Reader:
    """The bundle read front to back, once: exact reads, a running offset, one-line errors."""

    def __init__(self, f: io.FileIO, path: Path) -> None:
        self.f, self.path, self.offset = f, path, 0

    def read(self, n: int) -> bytes:
        """Up to `n` bytes; fewer only at the end of the file."""
        chunks: list[bytes] = []
        got = 0
        while got < n:
            try:
                block = self.f.read(n - got)
            except OSError as exc:
                raise BundleError(
                    f"{self.path}: cannot read at byte {self.offset + got}: {_reason(exc)}"
                ) from None
            if not block:
                break
            chunks.append(block)
            got += len(block)
        data = b"".join(chunks)
        self.offset += len(data)
        return data

    def exact(self, n: int, what: str) -> bytes:
        data = self.read(n)
        if len(data) < n:
            raise BundleError(
                f"{self.path}: the file ends inside {what} (byte {self.offset}): the bundle is truncated"
            )
        return data

    def fail(self, message: str) -> NoReturn:
        raise BundleError(f"{self.path}: {message}")


# -- tar headers -----------------------------------------------------------------------------


@dataclass(frozen=True)
class _Member:
    name: str
    size: int
    type: bytes
    offset: int


def _octal(r: _Reader, field: bytes, what: str, at: int) -> int:
    if field[:1] in (b"\x80", b"\xff"):
        r.fail(f"the header at byte {at} has a base-256 {what} field, which bundles do not use")
    digits = field.split(b"\0", 1)[0].strip(b" ")
    if not digits:
        return 0
    if not _OCTAL.fullmatch(digits):
        r.fail(f"the header at byte {at} has a {what} field that is not an octal number: corrupted")
    return int(digits, 8)


def _parse_header(r: _Reader, block: bytes, at: int) -> _Member:
    """One ustar header block, checksum first: garbage fails there, with a clear reason."""
    digits = block[148:156].split(b"\0", 1)[0].strip(b" ")
    if not _OCTAL.fullmatch(digits) or int(digits, 8) != sum(block[:148]) + 8 * 0x20 + sum(block[156:]):
        r.fail(f"bad tar header checksum at byte {at}: corrupted, or not a tar file")
    magic = block[257:265]
    if magic == b"ustar\x0000":
        prefix = block[345:500].split(b"\0", 1)[0]
    elif magic == b"ustar  \0":
        prefix = b""
    else:
        r.fail(f"the header at byte {at} is not a ustar header (an old or foreign tar format)")
    raw = block[:100].split(b"\0", 1)[0]
    if prefix:
        raw = prefix + b"/" + raw
    try:
        name = raw.decode("utf-8")
    except UnicodeDecodeError:
        r.fail(f"the member name at byte {at} is not valid UTF-8: {_show(raw)}")
    return _Member(name, _octal(r, block[124:136], "size", at), block[156:157], at)


def _parse_pax(r: _Reader, data: bytes, at: int) -> dict[str, str]:
    """The records of a pax header ("<len> <key>=<value>\\n"), strictly, allowed keys only."""
    records: dict[str, str] = {}
    pos = 0
    while pos < len(data):
        space = data.find(b" ", pos, pos + 21)
        length = data[pos:space] if space > 0 else b""
        if not _PAX_LENGTH.fullmatch(length):
            r.fail(f"the pax header at byte {at} is malformed")
        end = pos + int(length)
        if end > len(data) or end <= space + 2 or data[end - 1 : end] != b"\n":
            r.fail(f"the pax header at byte {at} is malformed")
        key, sep, value = data[space + 1 : end - 1].partition(b"=")
        if not sep or not key:
            r.fail(f"the pax header at byte {at} is malformed")
        try:
            k, v = key.decode("utf-8"), value.decode("utf-8")
        except UnicodeDecodeError:
            r.fail(f"the pax header at byte {at} is not valid UTF-8")
        if k not in _PAX_ALLOWED:
            r.fail(f"the pax record {_show(k)} at byte {at} is not allowed in a bundle")
        if k in records:
            r.fail(f"the pax header at byte {at} sets {k!r} twice")
        records[k] = v
        pos = end
    if "size" in records and not _DECIMAL.fullmatch(records["size"]):
        r.fail(f"the pax size at byte {at} is not a number: {_show(records['size'])}")
    return records


def _padding(r: _Reader, size: int, what: str) -> None:
    pad = r.exact(-size % BLOCK, what)
    if pad.count(0) != len(pad):
        r.fail(f"non-zero bytes in the padding after {what} (byte {r.offset - len(pad)})")


def _next_member(r: _Reader) -> _Member | None:
    """The next member header (a pax header applied), or None at the end-of-archive block."""
    pax: dict[str, str] | None = None
    pax_at = 0
    while True:
        at = r.offset
        block = r.read(BLOCK)
        if len(block) < BLOCK:
            r.fail(
                f"the file ends at byte {r.offset} without the end-of-archive blocks: the bundle is truncated"
            )
        if block == _ZERO_BLOCK:
            if pax is not None:
                r.fail(f"the pax header at byte {pax_at} is not followed by a member")
            return None
        member = _parse_header(r, block, at)
        if member.type != b"x":
            break
        if pax is not None:
            r.fail(f"two pax headers in a row at byte {at}")
        if member.size > MAX_PAX:
            r.fail(f"the pax header at byte {at} is {member.size} bytes, over the {MAX_PAX} cap")
        data = r.exact(member.size, "a pax header")
        _padding(r, member.size, "a pax header")
        pax, pax_at = _parse_pax(r, data, at), at
    if pax:
        member = _Member(
            pax.get("path", member.name), int(pax.get("size", member.size)), member.type, member.offset
        )
    return member


def _name_problem(name: str) -> str | None:
    if not name:
        return "an empty name"
    if name.startswith("/"):
        return "an absolute path"
    if ".." in name.split("/"):
        return "a '..' component"
    if not name.isprintable():
        return "a control character in its name"
    return None


def _check_member(r: _Reader, member: _Member) -> None:
    """Name and type, before anything else: what is refused is said as what it is."""
    problem = _name_problem(member.name)
    if problem:
        r.fail(f"member {_show(member.name)} has {problem}: refused")
    if member.type not in _REGULAR:
        kind = _TYPES.get(member.type, f"an entry of unknown type {_show(member.type)}")
        r.fail(f"member {_show(member.name)} is {kind}; a bundle holds only regular files")


# -- the manifest ----------------------------------------------------------------------------


def _loads(raw: bytes, what: str) -> Any:
    """Strict JSON: UTF-8, no duplicate keys (two parsers could read two different digests),
    no NaN or infinities, bounded nesting; every failure a one-line BundleError."""

    def pairs(items: list[tuple[str, Any]]) -> dict[str, Any]:
        out: dict[str, Any] = {}
        for key, value in items:
            if key in out:
                raise BundleError(f"{what} sets the key {_show(key)} twice")
            out[key] = value
        return out

    def number(text: str) -> float:
        value = float(text)
        if not math.isfinite(value):
            raise BundleError(f"{what} holds a number out of range: {_show(text)}")
        return value

    def constant(text: str) -> NoReturn:
        raise BundleError(f"{what} holds {text}, which is not JSON")

    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise BundleError(f"{what} is not valid UTF-8 (byte {exc.start})") from None
    try:
        return json.loads(text, object_pairs_hook=pairs, parse_float=number, parse_constant=constant)
    except RecursionError:
        raise BundleError(f"{what} is nested too deeply") from None
    except ValueError as exc:
        raise BundleError(f"{what} is not valid JSON: {exc}") from None


def _field_error(field: str, why: str) -> BundleError:
    return BundleError(f"manifest.json: {field} {why}")


def _check_part(i: int, part: Any) -> None:
    where = f"parts[{i}]"
    if not isinstance(part, dict):
        raise _field_error(where, "must be an object")
    for key in sorted(PART_FIELDS - set(part)):
        raise _field_error(f"{where}.{key}", "is missing")
    for key in sorted(set(part) - PART_FIELDS):
        raise _field_error(f"{where}.{_show(key)}", "is not a field of a part")
    path, kind, size, digest = part["path"], part["kind"], part["size"], part["sha256"]
    if not isinstance(path, str):
        raise _field_error(f"{where}.path", "must be a string")
    if path == IMAGE_PART:
        want = "image"
    elif path.startswith(MODEL_PREFIX) and _SAFE_NAME.fullmatch(path[len(MODEL_PREFIX) :]):
        want = "model"
    else:
        raise _field_error(
            f"{where}.path", f"{_show(path)} is neither image.tar nor model/<file> with a safe file name"
        )
    if kind != want:
        raise _field_error(f"{where}.kind", f"must be {want!r} for {path}, not {_show(kind)}")
    if not isinstance(size, int) or isinstance(size, bool) or not 0 <= size <= MAX_PART_SIZE:
        raise _field_error(
            f"{where}.size", f"must be an integer from 0 to {MAX_PART_SIZE}, not {_show(size)}"
        )
    if not isinstance(digest, str) or not _SHA256.fullmatch(digest):
        raise _field_error(f"{where}.sha256", f"must be 64 lowercase hex digits, not {_show(digest)}")


def _parse_manifest(raw: bytes) -> dict[str, Any]:
    """The manifest, of exactly the expected shape; the error names the field that is not."""
    manifest = _loads(raw, "manifest.json")
    if not isinstance(manifest, dict):
        raise BundleError("manifest.json is not a JSON object: not a tizi bundle")
    for key in sorted(set(manifest) - MANIFEST_FIELDS):
        raise _field_error(f"field {_show(key)}", f"is not part of {FORMAT}")
    for key in ("format", "image", "spec", "parts"):
        if key not in manifest:
            raise _field_error(f"field {key!r}", "is missing")
    if manifest["format"] != FORMAT:
        raise _field_error("format", f"is {_show(manifest['format'])}, this tizi reads {FORMAT}")
    created = manifest.get("created", "")
    if not isinstance(created, str) or len(created) > 64 or not created.isprintable():
        raise _field_error("created", f"must be a short timestamp string, not {_show(created)}")
    image = manifest["image"]
    if not isinstance(image, dict):
        raise _field_error("image", "must be an object with ref and id")
    for key in sorted(set(image) ^ {"ref", "id"}):
        raise _field_error(f"image.{_show(key)}", "is missing" if key in ("ref", "id") else "is not a field")
    if not isinstance(image["ref"], str) or not _IMAGE_REF.fullmatch(image["ref"]):
        raise _field_error("image.ref", f"is not an image reference: {_show(image['ref'])}")
    if not isinstance(image["id"], str) or not _IMAGE_ID.fullmatch(image["id"]):
        raise _field_error("image.id", f"must be sha256: and 64 hex digits, not {_show(image['id'])}")
    if not isinstance(manifest["spec"], dict):
        raise _field_error("spec", "must be an object")
    parts = manifest["parts"]
    if not isinstance(parts, list):
        raise _field_error("parts", "must be a list")
    if not 1 <= len(parts) <= MAX_PARTS:
        raise _field_error("parts", f"has {len(parts)} entries; a bundle has 1 to {MAX_PARTS}")
    seen: set[str] = set()
    for i, part in enumerate(parts):
        _check_part(i, part)
        if part["path"] in seen:
            raise _field_error(f"parts[{i}].path", f"{part['path']!r} is listed twice")
        seen.add(part["path"])
    if IMAGE_PART not in seen:
        raise _field_error("parts", "does not list image.tar")
    return manifest


def _check_model_metadata(manifest: dict[str, Any], raw: bytes | None) -> None:
    """If the model directory carries model.json, its digest must match the model file."""
    if raw is None:
        return
    meta = _loads(raw, MODEL_META)
    if not isinstance(meta, dict):
        raise BundleError(f"{MODEL_META} is not a JSON object")
    parts = {p["path"]: p for p in manifest["parts"]}
    name = meta.get("file")
    model = parts.get(MODEL_PREFIX + name) if isinstance(name, str) else None
    if model is None:
        raise BundleError(f"{MODEL_META} names the model file {_show(name)}, which is not in the bundle")
    if model["sha256"] != meta.get("sha256"):
        raise BundleError(f"{MODEL_META}: its sha256 does not match {model['path']}")


# -- the one pass ----------------------------------------------------------------------------


class _Spool:
    """The private copy of image.tar that `docker load` reads: unnamed, mode 0600, in a
    mode-0700 directory, written only with bytes that are being hashed."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory
        try:
            # closed by load_bundle's `with spool.file`, after docker load has read it
            self.file: BinaryIO = tempfile.TemporaryFile(dir=directory)  # noqa: SIM115
        except OSError as exc:
            raise BundleError(f"cannot create the spool file in {directory}: {_reason(exc)}") from None

    def reserve(self, size: int) -> None:
        try:
            st = os.statvfs(self.directory)
        except OSError as exc:
            raise BundleError(f"{self.directory}: {_reason(exc)}") from None
        free = st.f_bavail * st.f_frsize
        if size > free:
            raise BundleError(
                f"{self.directory.parent} has {free} bytes free, the verified copy of image.tar "
                f"needs {size}: set TMPDIR to a disk with room"
            )

    def write(self, data: bytes) -> None:
        try:
            self.file.write(data)
        except OSError as exc:
            raise BundleError(f"cannot write the spool copy of image.tar: {_reason(exc)}") from None


def _scan(path: Path, spool: _Spool | None = None) -> dict[str, Any]:
    """Read the bundle once, check everything, copy image.tar to `spool`; return the manifest."""
    with open_regular(Path(path)) as f:
        on_disk = os.fstat(f.fileno()).st_size
        r = _Reader(f, Path(path))
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
        manifest = _parse_manifest(raw)
        parts: list[dict[str, Any]] = manifest["parts"]
        listed = sum(p["size"] for p in parts)
        if listed > on_disk:
            r.fail(f"the manifest lists {listed} bytes of parts, the file holds {on_disk}: truncated")
        if spool is not None:
            spool.reserve(next(p["size"] for p in parts if p["path"] == IMAGE_PART))
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
            digest, kept = _hash_member(
                r, member, spool if member.name == IMAGE_PART else None, member.name == MODEL_META
            )
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
    if member.name == MANIFEST or member.name in seen:
        r.fail(f"duplicate member {_show(member.name)}")
    if member.name not in names:
        r.fail(f"member {_show(member.name)} is not in the manifest")
    if member.name != want:
        r.fail(f"member {member.name!r} is out of order: the manifest lists {want!r} next")


def _hash_member(r: _Reader, member: _Member, spool: _Spool | None, keep: bool) -> tuple[str, bytes | None]:
    h = hashlib.sha256()
    kept: list[bytes] = []
    remaining = member.size
    while remaining:
        block = r.exact(min(CHUNK, remaining), member.name)
        h.update(block)
        if spool is not None:
            spool.write(block)
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
        if extra.name in seen or extra.name == MANIFEST:
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


def verify_bundle(path: Path) -> dict[str, Any]:
    """Check every part against the manifest; return the manifest or raise BundleError."""
    return _scan(Path(path))


# -- docker ----------------------------------------------------------------------------------


def _env(docker_host: str | None) -> dict[str, str]:
    env = dict(os.environ)
    if docker_host:
        env["DOCKER_HOST"] = docker_host
    return env


def _docker_cli(env: Mapping[str, str]) -> str:
    """The docker client on the PATH the calls will use; checked before any slow work."""
    found = shutil.which("docker", path=env.get("PATH", os.defpath))
    if found is None:
        raise BundleError("the docker CLI is not on PATH: install it (the client is enough) or fix PATH")
    return found


def _stderr_line(stderr: bytes | str | None, code: int) -> str:
    text = stderr.decode(errors="replace") if isinstance(stderr, bytes) else stderr or ""
    text = " ".join(text.split())
    if len(text) > 400:
        text = "…" + text[-399:]
    return text or f"exit status {code}"


def _docker(
    args: list[str], docker_host: str | None, timeout: float | None = DOCKER_TIMEOUT, **kw: Any
) -> subprocess.CompletedProcess[Any]:
    env = _env(docker_host)
    cli = _docker_cli(env)
    kw.setdefault("stdout", subprocess.PIPE)
    kw.setdefault("stderr", subprocess.PIPE)
    try:
        proc = subprocess.run([cli, *args], env=env, timeout=timeout, **kw)
    except subprocess.TimeoutExpired:
        raise BundleError(f"docker {' '.join(args[:2])} did not finish within {timeout} s") from None
    except OSError as exc:
        raise BundleError(f"cannot run {cli}: {_reason(exc)}") from None
    if proc.returncode != 0:
        what = " ".join(args[:2]) if args[0] == "image" else args[0]
        raise BundleError(f"docker {what} failed: {_stderr_line(proc.stderr, proc.returncode)}")
    return proc


def image_id(image: str, docker_host: str | None = None) -> str:
    out = _docker(["image", "inspect", "--format", "{{.Id}}", image], docker_host, text=True)
    return str(out.stdout).strip()


def _docker_load(spooled: BinaryIO, docker_host: str | None) -> None:
    """Feed the verified copy, through the descriptor it was written with, to docker load."""
    try:
        spooled.flush()
        spooled.seek(0)
    except OSError as exc:
        raise BundleError(f"cannot read back the spool copy of image.tar: {_reason(exc)}") from None
    _docker(["load", "--quiet"], docker_host, timeout=None, stdin=spooled)


def load_bundle(path: Path, docker_host: str | None = None) -> str:
    """Verify, then `docker load` the verified copy into the engine at docker_host; return
    the image ref. One read of the file (see the module docstring): a bad bundle, or one
    changed after the check, loads nothing."""
    _docker_cli(_env(docker_host))
    try:
        private = tempfile.TemporaryDirectory(prefix="tizi-load-", ignore_cleanup_errors=True)
    except OSError as exc:  # gettempdir() itself fails when no candidate is usable
        where = tempfile.tempdir or os.environ.get("TMPDIR") or "any temporary directory"
        raise BundleError(f"cannot create a private directory in {where}: {_reason(exc)}") from None
    with private as directory:
        spool = _Spool(Path(directory))
        with spool.file:
            manifest = _scan(Path(path), spool)
            _docker_load(spool.file, docker_host)
    ref: str = manifest["image"]["ref"]
    loaded = image_id(ref, docker_host)
    if loaded != manifest["image"]["id"]:
        raise BundleError(f"loaded {ref} has id {_show(loaded)}, the manifest says {manifest['image']['id']}")
    return ref


# -- create ----------------------------------------------------------------------------------


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


def _safe_model_name(name: str, where: str) -> None:
    if not _SAFE_NAME.fullmatch(name):
        raise BundleError(
            f"{where}: {_show(name)} is not a safe model file name "
            "(letters, digits, . _ + -, not starting with a dot, at most 128)"
        )


def _model_sources(model_dir: Path) -> list[Path]:
    try:
        kind = None if stat.S_ISDIR(os.stat(model_dir).st_mode) else "not a directory"
        entries = sorted(os.scandir(model_dir), key=lambda e: e.name) if kind is None else []
    except OSError as exc:
        raise BundleError(f"{model_dir}: {_reason(exc)}") from None
    if kind:
        raise BundleError(f"{model_dir} is {kind}; --model-dir takes a directory of model files")
    files = []
    for entry in entries:
        try:
            regular = entry.is_file()  # follows symlinks; FIFOs, devices and folders are left out
        except OSError:
            regular = False
        if regular:
            _safe_model_name(entry.name, str(model_dir))
            files.append(Path(entry.path))
    if not files:
        raise BundleError(f"no model files in {model_dir}")
    if len(files) >= MAX_PARTS:
        raise BundleError(f"{model_dir} has {len(files)} files; a bundle holds at most {MAX_PARTS - 1}")
    return files


def _copy_hashed(src: Path, dest: Path) -> None:
    """Copy a model file into the private work directory: the bundle is written from copies
    nobody else can change between hashing and archiving."""
    with open_regular(src, "model file") as f, open(dest, "xb") as out:
        while True:
            try:
                block = f.read(CHUNK)
            except OSError as exc:
                raise BundleError(f"{src}: cannot read: {_reason(exc)}") from None
            if not block:
                break
            out.write(block)


def extract_model_files(
    image: str, dest: Path, docker_host: str | None = None, path: str = DEFAULT_MODEL_PATH
) -> list[Path]:
    """Copy the model directory out of the image (docker create + docker cp, never started)."""
    cid = _docker(["create", image], docker_host, text=True).stdout.strip()
    try:
        stream = _docker(["cp", f"{cid}:{path}/.", "-"], docker_host).stdout
    finally:
        _docker(["rm", "-f", cid], docker_host)
    dest.mkdir(parents=True, exist_ok=True)
    files: list[Path] = []
    try:
        with tarfile.open(fileobj=io.BytesIO(stream), mode="r:") as tar:
            for m in tar.getmembers():
                if not m.isfile():
                    continue
                name = PurePosixPath(m.name).name
                _safe_model_name(name, f"{image}:{path}")
                if dest / name in files:
                    raise BundleError(f"{image}:{path} has two model files named {name!r}")
                src = tar.extractfile(m)
                if src is None:
                    raise BundleError(f"{image}:{path}/{name} cannot be read")
                (dest / name).write_bytes(src.read())
                files.append(dest / name)
    except tarfile.TarError as exc:
        raise BundleError(f"docker cp of {image}:{path} returned an unreadable tar: {exc}") from None
    if not files:
        raise BundleError(f"no model files under {path} in {image}")
    if len(files) >= MAX_PARTS:
        raise BundleError(f"{image}:{path} has {len(files)} files; a bundle holds at most {MAX_PARTS - 1}")
    return sorted(files)


def _sha256_file(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(CHUNK), b""):
            h.update(block)
    return h.hexdigest()


def _write_tar(partial: Path, manifest_raw: bytes, parts: list[tuple[str, Path, int]]) -> None:
    """manifest.json, then the parts: regular files, fixed owner and mode, whole-second
    mtimes (no pax header needed unless a name is long); fsynced before it is renamed."""
    now = int(time.time())
    with contextlib.ExitStack() as stack:
        raw = stack.enter_context(open(partial, "xb"))
        tar = stack.enter_context(tarfile.open(fileobj=raw, mode="w", format=tarfile.PAX_FORMAT))
        entries: list[tuple[str, int, BinaryIO]] = [(MANIFEST, len(manifest_raw), io.BytesIO(manifest_raw))]
        entries += [(name, size, stack.enter_context(open(path, "rb"))) for name, path, size in parts]
        for name, size, src in entries:
            info = tarfile.TarInfo(name)
            info.size, info.mtime, info.mode = size, now, 0o644
            tar.addfile(info, src)
        tar.close()
        raw.flush()
        os.fsync(raw.fileno())


def create_bundle(
    image: str,
    out: Path,
    spec: Mapping[str, Any] | None = None,
    model_dir: Path | None = None,
    docker_host: str | None = None,
) -> dict[str, Any]:
    """Write a bundle for `image` (read from the engine at docker_host) to `out`.

    The model files come from `model_dir`, or from the image's /opt/tizi/model when None.
    Everything that can be checked before `docker save` (which takes minutes) is checked
    first. The file appears at `out` only once complete and verified by the same reader as
    `tizi bundle verify` (written beside it, then renamed), so no half-written or unreadable
    bundle is ever left at `out`.
    """
    if not _IMAGE_REF.fullmatch(image):
        raise BundleError(f"{_show(image)} is not an image reference")
    out = Path(out)
    _check_output(out)
    spec = dict(spec or {})
    try:
        json.dumps(spec, allow_nan=False)
    except (TypeError, ValueError, RecursionError) as exc:
        raise BundleError(f"the spec cannot be written as JSON: {exc}") from None
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
        image_tar = work / IMAGE_PART
        try:
            with open(image_tar, "xb") as f:
                _docker(["save", image], docker_host, timeout=None, stdout=f)
            if sources is None:
                models = extract_model_files(image, work / "model", docker_host)
            else:
                (work / "model").mkdir()
                models = []
                for src in sources:
                    _copy_hashed(src, work / "model" / src.name)
                    models.append(work / "model" / src.name)
            parts = [(IMAGE_PART, image_tar, "image")]
            parts += [(MODEL_PREFIX + p.name, p, "model") for p in models]
            manifest = {
                "format": FORMAT,
                "created": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
                "image": {"ref": image, "id": image_id(image, docker_host)},
                "spec": spec,
                "parts": [
                    {"path": name, "kind": kind, "size": p.stat().st_size, "sha256": _sha256_file(p)}
                    for name, p, kind in parts
                ],
            }
            try:
                raw = json.dumps(manifest, indent=2, sort_keys=True, allow_nan=False).encode()
            except (TypeError, ValueError) as exc:
                raise BundleError(f"the spec cannot be written as JSON: {exc}") from None
            if len(raw) > MAX_MANIFEST:
                raise BundleError(f"the manifest would be {len(raw)} bytes, over the {MAX_MANIFEST}-byte cap")
            _parse_manifest(raw)  # the image id from the engine and the names are what verify accepts
            partial = work / "bundle.partial"
            sizes = [(name, p, p.stat().st_size) for name, p, _ in parts]
            _write_tar(partial, raw, sizes)
            _scan(partial)
            os.replace(partial, out)
        except OSError as exc:
            raise BundleError(f"cannot write {out}: {_reason(exc)}") from None
    return manifest
