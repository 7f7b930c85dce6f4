"""Offline bundles: one signed file a technician carries to a site with no connectivity.

A bundle (format tizi-bundle/2) is an uncompressed tar whose members are, in this order:

    manifest.json           first, so it is read before anything else
    manifest.json.minisig   the minisign signature of manifest.json, right after it
    image.tar.zst           `docker save` of the bundle's images (one or more), zstd-compressed
    model/<files>           model files (weights, model.json), stored as they are

manifest.json holds the format, when the bundle was made, the images (ref and id of each),
the service spec it was made for, and the path, kind, size and sha256 of every part; for
image.tar.zst also the size and sha256 of image.tar once decompressed. No registry is
involved anywhere, and nothing needs a network: not signing, not checking.

What is signed, and why there. The signature covers manifest.json, byte for byte, and the
manifest pins every part by sha256, so one signature covers the whole bundle: a changed part
fails its digest, a changed manifest fails the signature. Everything else in the manifest
is covered too and so is now trusted: the image refs and ids (load checks the engine's ids
against them), the spec and `created`. The signature is a member, right after the manifest,
rather than a detached `<bundle>.minisig`: a bundle stays one file on a USB stick (a
signature cannot be left behind or paired with the wrong bundle), and the reader meets it
before a single part, so a bundle from another key or with a tampered manifest is refused
after reading a few KiB, and the JSON parser only ever sees signed bytes. The signature is
minisign's own format (Ed25519 over the BLAKE2b-512 of the manifest, plus a signed trusted
comment), so an operator can check it with Debian's stock tools, no tizi needed:

    tar -xf site.tar manifest.json manifest.json.minisig
    minisign -V -p tizi-bundle.pub -m manifest.json       # reads manifest.json.minisig
    tar -xf site.tar                                      # then the parts against the manifest:
    jq -r '.parts[] | "\\(.sha256)  \\(.path)"' manifest.json | sha256sum -c
    zstd -dc image.tar.zst | sha256sum                    # = the image part's tar_sha256

A signature proves who made the bundle, not that it is the newest: an older bundle signed
by the same key still verifies. `created` and the image refs are signed, and `verify` and
`load` print them, so an operator can see what they are about to load.

Keys are minisign key pairs: `tizi bundle keygen` writes them (the secret key file mode
0600, never printed), `minisign -G` keys work too. A secret key may be encrypted with a
passphrase in minisign's own scheme (scrypt, then XOR), read from $TIZI_BUNDLE_PASSPHRASE or
asked on the terminal, never taken from the command line (argv is visible to every user
through /proc).

Compression: image layers compress (the reference image.tar to 30 % with zstd level 3, in
under a second), so the image part is zstd-compressed: zstd decompresses at hundreds of
MB/s, and level 3 is the default because level 19 is only 11 to 25 % smaller for over 100
times the time (README, "Edge workflow", has the measurements). Quantized GGUF weights
barely compress (94 % at level 3), so model files are stored as they are: an operator can
check them with sha256sum straight out of the tar. The whole image.tar is one zstd frame
with its size and checksum, so stock `zstd -t` and `zstd -d` handle it.

Reading is strict, because a bundle arrives from outside (a USB stick, a file share) and the
reader runs as whoever may talk to the engine. The tar is parsed here, one 512-byte header
at a time, rather than by `tarfile`, whose job is to be lenient: it skips bad blocks, accepts
links, devices and GNU extensions, ignores what follows the archive, and has many ways to
fail. Accepted is exactly what `create_bundle` writes: manifest.json first (at most
MAX_MANIFEST bytes), its signature (at most MAX_SIGNATURE bytes, valid for the public key
given), the manifest (UTF-8 JSON of the expected shape), then exactly the parts it lists, in
its order, each a regular file whose size and sha256 match, then the end-of-archive blocks
and at most one tar record of zero padding. Refused, each with one line naming what is
wrong: an unsigned bundle, a signature by another key or over another manifest, anything
else in a header (links, devices, FIFOs, directories, GNU and global pax headers, sparse
files, `..` or absolute names, a bad checksum), duplicate members, members not in the
manifest or missing from the tar, non-zero padding, and data after the end. Nothing is ever
extracted to the file system by name.

Verify-then-load reads ONE stream. `load_bundle` opens the bundle once (after checking that
it is a regular file, so a FIFO or a device cannot block or feed it forever) and reads it
front to back exactly once: the signature is checked, every part is hashed as it passes and
the image part is at the same time decompressed into a spool, an unnamed temporary file
(mode 0600) in a private directory (mode 0700) under $TMPDIR, the decompressed bytes hashed
too and capped at the signed tar_size (a decompression bomb stops there). The decompressor
thus sees bytes whose digest is not yet confirmed; it is libzstd, fuzzed continuously
upstream, its window capped at 128 MiB, and nothing it produces is used before both digests
match. Only when every size, digest and the end of the archive have checked out is the
spooled copy handed, through the same descriptor, to `docker load` on stdin. The bundle
path is never opened again, so a file changed or replaced after the check cannot be
loaded: the engine gets byte for byte what was hashed. Piping into `docker load` while
hashing would avoid the copy, but docker load has no "commit only if the digest matches"
step: a corrupted image would already be in the engine when the mismatch shows. Disk cost:
one decompressed copy of image.tar (its size, from the signed manifest, is checked against
the free space of $TMPDIR before copying; set TMPDIR to a disk with room) for the duration of
the load. The copy goes when load returns, fails or is interrupted; being unnamed, it goes
even on SIGKILL (only the empty private directory would stay).
"""

from __future__ import annotations

import base64
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
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Any, BinaryIO, NoReturn, cast

import zstandard
from minisign import (  # type: ignore[import-untyped]  # py-minisign ships no type information
    Error as MinisignError,
)
from minisign import KeyPair, PublicKey, SecretKey, Signature

FORMAT = "tizi-bundle/2"
#: Formats this tizi no longer reads, and why: said instead of a bare "unknown format".
OLD_FORMATS = {"tizi-bundle/1": "an unsigned bundle from an older tizi: create it again"}
MANIFEST = "manifest.json"
SIGNATURE = MANIFEST + ".minisig"
IMAGE_PART = "image.tar.zst"
MODEL_PREFIX = "model/"
MODEL_META = MODEL_PREFIX + "model.json"
#: Where tizi's reference image keeps its model (label org.tizi.model).
DEFAULT_MODEL_PATH = "/opt/tizi/model"
#: Where a model image (scripts/build-model-image.sh, label org.tizi.model.file) keeps its weights.
MODEL_IMAGE_PATH = "/model"
MODEL_FILE_LABEL = "org.tizi.model.file"
REFERENCE_MODEL_LABEL = "org.tizi.model"
CHUNK = 1 << 20
BLOCK = 512
#: tar's default record (blocking factor 20): writers pad the archive to a multiple of it.
RECORD = 20 * BLOCK
#: A manifest is a few KiB; the cap bounds what is read before the signature is checked.
MAX_MANIFEST = 1 << 20
#: A minisign signature is four lines; its trusted comment is at most 8 KiB.
MAX_SIGNATURE = 16 << 10
#: A minisign key file is two lines of about 100 (public) or 220 (secret) characters.
MAX_KEY_FILE = 4096
#: One image part and the files of a model directory; more is not a bundle tizi made.
MAX_PARTS = 256
#: A site's server and model images, and a few more; a bundle is loaded by one docker load.
MAX_IMAGES = 16
#: 1 TiB: far above any image, low enough that sizes stay plain integers everywhere.
MAX_PART_SIZE = 1 << 40
#: pax records tarfile writes are a few hundred bytes (a long path, an mtime).
MAX_PAX = 64 << 10
MAX_MODEL_META = 1 << 20
#: zstd level of the image part: measured on the reference image (README, "Edge workflow").
ZSTD_LEVEL = 3
#: Decompression memory cap (zstd's own default limit, said out loud): 128 MiB of window.
ZSTD_MAX_WINDOW = 1 << 27
#: Seconds for the short docker calls (inspect, create, cp, rm); save and load are not capped.
DOCKER_TIMEOUT = 300
#: The environment variable a secret key's passphrase is read from (never from argv).
PASSPHRASE_ENV = "TIZI_BUNDLE_PASSPHRASE"
MANIFEST_FIELDS = frozenset({"format", "created", "images", "spec", "parts"})
PART_FIELDS = frozenset({"path", "kind", "size", "sha256"})
IMAGE_PART_FIELDS = PART_FIELDS | {"tar_size", "tar_sha256"}

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


def _check_size(where: str, size: Any) -> None:
    if not isinstance(size, int) or isinstance(size, bool) or not 0 <= size <= MAX_PART_SIZE:
        raise _field_error(where, f"must be an integer from 0 to {MAX_PART_SIZE}, not {_show(size)}")


def _check_digest(where: str, digest: Any) -> None:
    if not isinstance(digest, str) or not _SHA256.fullmatch(digest):
        raise _field_error(where, f"must be 64 lowercase hex digits, not {_show(digest)}")


def _check_part(i: int, part: Any) -> None:
    where = f"parts[{i}]"
    if not isinstance(part, dict):
        raise _field_error(where, "must be an object")
    path = part.get("path")
    if "path" not in part:
        raise _field_error(f"{where}.path", "is missing")
    if not isinstance(path, str):
        raise _field_error(f"{where}.path", "must be a string")
    if path == IMAGE_PART:
        want, fields = "image", IMAGE_PART_FIELDS
    elif path.startswith(MODEL_PREFIX) and _SAFE_NAME.fullmatch(path[len(MODEL_PREFIX) :]):
        want, fields = "model", PART_FIELDS
    else:
        raise _field_error(
            f"{where}.path", f"{_show(path)} is neither {IMAGE_PART} nor model/<file> with a safe file name"
        )
    for key in sorted(fields - set(part)):
        raise _field_error(f"{where}.{key}", "is missing")
    for key in sorted(set(part) - fields):
        raise _field_error(
            f"{where}.{_show(key)}", f"is not a field of {'an image' if want == 'image' else 'a model'} part"
        )
    if part["kind"] != want:
        raise _field_error(f"{where}.kind", f"must be {want!r} for {path}, not {_show(part['kind'])}")
    _check_size(f"{where}.size", part["size"])
    _check_digest(f"{where}.sha256", part["sha256"])
    if want == "image":
        _check_size(f"{where}.tar_size", part["tar_size"])
        _check_digest(f"{where}.tar_sha256", part["tar_sha256"])


def _check_images(images: Any) -> None:
    """The images the image part holds: refs the engine will be asked about, ids it must report."""
    if not isinstance(images, list):
        raise _field_error("images", "must be a list")
    if not 1 <= len(images) <= MAX_IMAGES:
        raise _field_error("images", f"has {len(images)} entries; a bundle has 1 to {MAX_IMAGES}")
    refs: set[str] = set()
    for i, image in enumerate(images):
        where = f"images[{i}]"
        if not isinstance(image, dict):
            raise _field_error(where, "must be an object with ref and id")
        for key in sorted(set(image) ^ {"ref", "id"}):
            raise _field_error(
                f"{where}.{_show(key)}", "is missing" if key in ("ref", "id") else "is not a field"
            )
        if not isinstance(image["ref"], str) or not _IMAGE_REF.fullmatch(image["ref"]):
            raise _field_error(f"{where}.ref", f"is not an image reference: {_show(image['ref'])}")
        if not isinstance(image["id"], str) or not _IMAGE_ID.fullmatch(image["id"]):
            raise _field_error(f"{where}.id", f"must be sha256: and 64 hex digits, not {_show(image['id'])}")
        if image["ref"] in refs:
            raise _field_error(f"{where}.ref", f"{image['ref']!r} is listed twice")
        refs.add(image["ref"])


def _parse_manifest(raw: bytes) -> dict[str, Any]:
    """The manifest, of exactly the expected shape; the error names the field that is not."""
    manifest = _loads(raw, "manifest.json")
    if not isinstance(manifest, dict):
        raise BundleError("manifest.json is not a JSON object: not a tizi bundle")
    if "format" not in manifest:
        raise _field_error("field 'format'", "is missing")
    fmt = manifest["format"]
    if fmt != FORMAT:
        why = OLD_FORMATS.get(fmt) if isinstance(fmt, str) else None
        raise _field_error("format", f"is {_show(fmt)}, " + (why or f"this tizi reads {FORMAT}"))
    for key in sorted(set(manifest) - MANIFEST_FIELDS):
        raise _field_error(f"field {_show(key)}", f"is not part of {FORMAT}")
    for key in ("images", "spec", "parts"):
        if key not in manifest:
            raise _field_error(f"field {key!r}", "is missing")
    created = manifest.get("created", "")
    if not isinstance(created, str) or len(created) > 64 or not created.isprintable():
        raise _field_error("created", f"must be a short timestamp string, not {_show(created)}")
    _check_images(manifest["images"])
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
        raise _field_error("parts", f"does not list {IMAGE_PART}")
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


# -- keys and signatures ---------------------------------------------------------------------


def _key_id(raw_id: bytes) -> str:
    """A key id as minisign prints it (its 8 bytes read as a little-endian number, in hex,
    without leading zeros), so the id tizi shows is the one in the comment line of a
    `minisign -G` public key file."""
    return f"{int.from_bytes(raw_id, 'little'):X}"


def _id_in(line: bytes) -> bytes:
    """The key id inside a base64 key or signature line: after the 2-byte algorithm."""
    return base64.b64decode(line)[2:10]


def public_key_id(public_key: PublicKey) -> str:
    return _key_id(_id_in(public_key.to_base64()))


def read_public_key(path: Path) -> PublicKey:
    """A minisign public key file (two lines, as `minisign -G` and `tizi bundle keygen` write)."""
    raw = read_small_file(Path(path), "public key file", MAX_KEY_FILE)
    try:
        return PublicKey.from_bytes(raw)
    except (MinisignError, ValueError):
        raise BundleError(f"{path}: not a minisign public key file") from None


def read_secret_key(path: Path, passphrase: Callable[[], str]) -> SecretKey:
    """A minisign secret key, decrypted with `passphrase()` if it is encrypted (only then is
    it called: an unencrypted key needs no prompt). Errors never quote the file's content.

    A damaged file whose secret and public halves no longer match is refused here, by
    signing and checking a probe, rather than after minutes of `docker save`.
    """
    raw = read_small_file(Path(path), "secret key file", MAX_KEY_FILE)
    try:
        key = SecretKey.from_bytes(raw)
    except (MinisignError, ValueError):
        raise BundleError(f"{path}: not a minisign secret key file") from None
    try:
        if key.is_encrypted():
            key.decrypt(passphrase())
        probe = b"tizi bundle key check"
        key.get_public_key().verify(probe, key.sign(probe))
    except BundleError:
        key.wipe()
        raise
    except (MinisignError, ValueError):
        key.wipe()
        raise BundleError(f"{path}: wrong passphrase, or a damaged secret key file") from None
    return key


def _write_new(path: Path, data: bytes, mode: int) -> None:
    """Create `path` with exactly `mode` (whatever the umask; a symlink is not followed)
    and write `data`; an existing file is refused: a key is never overwritten."""
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC, mode)
    except FileExistsError:
        raise BundleError(f"{path} already exists: refusing to overwrite a key") from None
    except OSError as exc:
        raise BundleError(f"cannot write {path}: {_reason(exc)}") from None
    try:
        os.fchmod(fd, mode)
        with os.fdopen(fd, "wb", closefd=False) as f:
            f.write(data)
            f.flush()
            os.fsync(fd)
    except OSError as exc:
        os.unlink(path)
        raise BundleError(f"cannot write {path}: {_reason(exc)}") from None
    finally:
        os.close(fd)


def generate_key_pair(secret_path: Path, public_path: Path, passphrase: str | None) -> str:
    """Write a new minisign key pair: the secret key mode 0600 (encrypted with `passphrase`
    unless it is None), the public key 0644. Returns the key id. Neither file may exist."""
    secret_path, public_path = Path(secret_path), Path(public_path)
    if os.path.abspath(secret_path) == os.path.abspath(public_path):
        raise BundleError(f"{secret_path}: the secret and the public key need two different files")
    for path in (secret_path, public_path):
        if os.path.lexists(path):
            raise BundleError(f"{path} already exists: refusing to overwrite a key")
    pair = KeyPair.generate()
    public = pair.public_key
    key_id = public_key_id(public)
    public.untrusted_comment = f"minisign public key {key_id}"
    with pair.secret_key as secret:  # wiped on exit; the bytes object below cannot be
        if passphrase is not None:
            secret.encrypt(passphrase)
        secret_bytes = bytes(secret) + b"\n"
    _write_new(secret_path, secret_bytes, 0o600)
    try:
        _write_new(public_path, bytes(public) + b"\n", 0o644)
    except BundleError:
        os.unlink(secret_path)
        raise
    return key_id


def sign_manifest(raw: bytes, secret_key: SecretKey, created: int) -> bytes:
    """The minisign signature file of `raw` (prehashed Ed25519, as `minisign -S` writes it):
    the trusted comment follows minisign's own (timestamp, file name, "hashed")."""
    signature = secret_key.sign(
        raw,
        prehash=True,
        untrusted_comment="signature from tizi bundle secret key",
        trusted_comment=f"timestamp:{created}\tfile:{MANIFEST}\thashed",
    )
    return bytes(signature) + b"\n"


def _check_signature(r: _Reader, raw: bytes, signature: bytes, public_key: PublicKey) -> None:
    """The manifest's bytes against the signature member, before they are parsed."""
    try:
        parsed = Signature.from_bytes(signature)
    except (MinisignError, ValueError):
        r.fail(f"{SIGNATURE} is not a minisign signature")
    try:
        signed_by = _key_id(_id_in(signature.splitlines()[1]))
    except (ValueError, IndexError):  # parsed above, so unreachable; a one-line error anyway
        r.fail(f"{SIGNATURE} is not a minisign signature")
    want = public_key_id(public_key)
    if signed_by != want:
        r.fail(f"signed by another key: key {signed_by}, the public key given is {want}")
    try:
        public_key.verify(raw, parsed)
    except (MinisignError, ValueError):
        r.fail(f"bad signature: {MANIFEST} was changed after signing, or the signature is another manifest's")


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


class _MemberSource:
    """One member's bytes as a file for the zstd reader: hashed as they are read, never past
    the member's end (so the decompressor cannot read into the next header)."""

    def __init__(self, r: _Reader, member: _Member) -> None:
        self.r, self.name, self.remaining = r, member.name, member.size
        self.sha256 = hashlib.sha256()

    def read(self, size: int = -1) -> bytes:
        n = self.remaining if size < 0 else min(size, self.remaining)
        block = self.r.exact(n, self.name) if n else b""
        self.sha256.update(block)
        self.remaining -= len(block)
        return block

    def drain(self) -> None:
        while self.remaining:
            self.read(CHUNK)


def _read_image_part(r: _Reader, member: _Member, want: dict[str, Any], spool: _Spool | None) -> None:
    """Hash image.tar.zst, decompress it (into the spool when loading), hash what comes out.

    The decompressed output is capped at the signed tar_size: past it the decompressor is
    not asked for more. Whatever goes wrong while decompressing, the rest of the member is
    still hashed first, so a tampered part is reported as such ("sha256 mismatch"), and a
    zstd error is reported only for bytes that are the signed ones.
    """
    source = _MemberSource(r, member)
    tar_sha256 = hashlib.sha256()
    out = 0
    limit: int = want["tar_size"]
    problem = ""
    try:
        reader = zstandard.ZstdDecompressor(max_window_size=ZSTD_MAX_WINDOW).stream_reader(
            cast(BinaryIO, source),  # only read() is called, which it has
            read_size=CHUNK,
            read_across_frames=True,
            closefd=False,
        )
        while block := reader.read(min(CHUNK, limit - out + 1)):
            out += len(block)
            if out > limit:
                problem = f"decompresses to more than the manifest's tar_size of {limit} bytes"
                break
            tar_sha256.update(block)
            if spool is not None:
                spool.write(block)
    except zstandard.ZstdError as exc:
        problem = f"not valid zstd data ({' '.join(str(exc).split())})"
    source.drain()
    _padding(r, member.size, member.name)
    if source.sha256.hexdigest() != want["sha256"]:
        r.fail(f"{member.name}: sha256 mismatch: the bundle is corrupted")
    if problem:
        r.fail(f"{member.name}: {problem}")
    if out != limit:
        r.fail(f"{member.name}: decompresses to {out} bytes, the manifest's tar_size is {limit}")
    if tar_sha256.hexdigest() != want["tar_sha256"]:
        r.fail(f"{member.name}: the decompressed image.tar does not match tar_sha256")


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


def _public(public_key: PublicKey | Path) -> PublicKey:
    return read_public_key(public_key) if isinstance(public_key, Path) else public_key


def verify_bundle(path: Path, public_key: PublicKey | Path) -> dict[str, Any]:
    """Check the signature of the manifest with `public_key` (a key or a .pub file), then
    every part against it; return the manifest or raise BundleError."""
    return _scan(Path(path), _public(public_key))


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


def _inspect(image: str, docker_host: str | None) -> tuple[str, dict[str, str]]:
    """The image's id and labels, in one call (the labels say where its model files are)."""
    out = _docker(
        ["image", "inspect", "--format", "{{.Id}} {{json .Config.Labels}}", image], docker_host, text=True
    )
    found, _, rest = str(out.stdout).strip().partition(" ")
    try:
        labels = json.loads(rest) if rest else None
    except ValueError:
        labels = "?"
    if not _IMAGE_ID.fullmatch(found) or not isinstance(labels, dict | None):
        raise BundleError(f"docker image inspect {image} returned {_show(out.stdout)}, not an id and labels")
    return found, {str(k): str(v) for k, v in (labels or {}).items()}


def model_path_of(labels: Mapping[str, str]) -> str | None:
    """Where an image keeps model files, from tizi's own labels: a model image
    (scripts/build-model-image.sh) at /model, the reference image at /opt/tizi/model; None
    for an image that carries none (the llama.cpp server says "none: mount a GGUF ...")."""
    if labels.get(MODEL_FILE_LABEL):
        return MODEL_IMAGE_PATH
    described = labels.get(REFERENCE_MODEL_LABEL, "")
    if described and not described.startswith("none"):
        return DEFAULT_MODEL_PATH
    return None


def extract_model_files(
    image: str, dest: Path, docker_host: str | None = None, path: str = DEFAULT_MODEL_PATH
) -> list[Path]:
    """Copy the model directory out of the image (docker create + docker cp, never started).

    The copy goes through a file in `dest`'s parent, not memory: weights run to gigabytes.
    The command given to create is never run; it is there because an image without CMD
    (a model image is only files) cannot be created without one.
    """
    cid = _docker(["create", image, "tizi-bundle-never-started"], docker_host, text=True).stdout.strip()
    stream = dest.parent / f"{dest.name}.cp.tar"
    try:
        with open(stream, "xb") as f:
            _docker(["cp", f"{cid}:{path}/.", "-"], docker_host, timeout=None, stdout=f)
    finally:
        _docker(["rm", "-f", cid], docker_host)
    dest.mkdir(parents=True, exist_ok=True)
    files: list[Path] = []
    try:
        with tarfile.open(stream, mode="r:") as tar:
            for m in tar.getmembers():
                if not m.isfile():
                    continue
                name = PurePosixPath(m.name).name
                _safe_model_name(name, f"{image}:{path}")
                if dest / name in files or (dest / name).exists():
                    raise BundleError(f"two model files named {name!r} ({image}:{path} and another image)")
                src = tar.extractfile(m)
                if src is None:
                    raise BundleError(f"{image}:{path}/{name} cannot be read")
                with src, open(dest / name, "xb") as out:
                    shutil.copyfileobj(src, out, CHUNK)
                files.append(dest / name)
    except tarfile.TarError as exc:
        raise BundleError(f"docker cp of {image}:{path} returned an unreadable tar: {exc}") from None
    finally:
        stream.unlink()
    if not files:
        raise BundleError(f"no model files under {path} in {image}")
    return sorted(files)


def _sha256_file(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(CHUNK), b""):
            h.update(block)
    return h.hexdigest()


def compress_image(src: Path, dest: Path, level: int = ZSTD_LEVEL) -> tuple[int, str]:
    """zstd-compress `src` into `dest` (one frame, with its size and a checksum, so stock
    `zstd -t` and `zstd -d` check and unpack it); returns the size and sha256 of `src`,
    read once. Single-threaded: the result does not depend on the machine's cores."""
    h = hashlib.sha256()
    size = src.stat().st_size
    compressor = zstandard.ZstdCompressor(level=level, write_checksum=True, write_content_size=True)
    with open(src, "rb") as f, open(dest, "xb") as out:
        with compressor.stream_writer(out, size=size, closefd=False) as writer:
            for block in iter(lambda: f.read(CHUNK), b""):
                h.update(block)
                writer.write(block)
        out.flush()
    return size, h.hexdigest()


def _write_tar(partial: Path, head: list[tuple[str, bytes]], parts: list[tuple[str, Path, int]]) -> None:
    """manifest.json and its signature, then the parts: regular files, fixed owner and
    mode, whole-second mtimes (no pax header needed unless a name is long); fsynced before
    it is renamed."""
    now = int(time.time())
    with contextlib.ExitStack() as stack:
        raw = stack.enter_context(open(partial, "xb"))
        tar = stack.enter_context(tarfile.open(fileobj=raw, mode="w", format=tarfile.PAX_FORMAT))
        entries: list[tuple[str, int, BinaryIO]] = [(n, len(d), io.BytesIO(d)) for n, d in head]
        entries += [(name, size, stack.enter_context(open(path, "rb"))) for name, path, size in parts]
        for name, size, src in entries:
            info = tarfile.TarInfo(name)
            info.size, info.mtime, info.mode = size, now, 0o644
            tar.addfile(info, src)
        tar.close()
        raw.flush()
        os.fsync(raw.fileno())


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


def _gather_models(
    work: Path,
    facts: list[tuple[str, str, dict[str, str]]],
    sources: list[Path] | None,
    model_files: bool,
    docker_host: str | None,
) -> list[Path]:
    """The model files to bundle, copied into the private work directory: the bundle is
    written from copies nobody else can change between hashing and archiving."""
    dest = work / "model"
    if sources is not None:
        dest.mkdir()
        for src in sources:
            _copy_hashed(src, dest / src.name)
        return [dest / src.name for src in sources]
    files: list[Path] = []
    if model_files:
        for ref, _, labels in facts:
            path = model_path_of(labels)
            if path is not None:
                files += extract_model_files(ref, dest, docker_host, path)
    if len(files) >= MAX_PARTS:
        raise BundleError(f"the images hold {len(files)} model files; a bundle holds at most {MAX_PARTS - 1}")
    return sorted(files)


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
