"""The tar format: a strict reader of bundle members, and the writer create uses.

Reading is strict, because a bundle arrives from outside (a USB stick, a file share) and the
reader runs as whoever may talk to the engine. The tar is parsed here, one 512-byte header
at a time, rather than by `tarfile`, whose job is to be lenient: it skips bad blocks, accepts
links, devices and GNU extensions, ignores what follows the archive, and has many ways to
fail. A member here is a regular file whose ustar header has the right checksum and whose
name is not empty, not absolute, and has no `..` component and no control character; its
data is followed by zero padding, and at most one pax header precedes it, holding only
records that describe a member (path, size, times, owners). Refused, each with one line
naming what is wrong: anything else in a header (links, devices, FIFOs, directories, GNU
and global pax headers, sparse files, `..` or absolute names, a bad checksum) and non-zero
padding. Which members a bundle holds, and in what order, is checked by verify.py.

Writing goes through `tarfile` (PAX format): regular files only, with a fixed mode and
whole-second mtimes, which the reader above accepts.
"""

from __future__ import annotations

import contextlib
import io
import os
import re
import tarfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO, NoReturn

from components.ops.bundle.errors import BundleError, _reason, _show

BLOCK = 512
#: tar's default record (blocking factor 20): writers pad the archive to a multiple of it.
RECORD = 20 * BLOCK
#: pax records tarfile writes are a few hundred bytes (a long path, an mtime).
MAX_PAX = 64 << 10

_ZERO_BLOCK = bytes(BLOCK)
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
