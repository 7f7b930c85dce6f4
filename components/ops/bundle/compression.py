"""zstd: the image part compressed on create, and decompressed, capped and hashed on read.

Image layers compress (the reference image.tar to 30 % with zstd level 3, in under a
second), so the image part is zstd-compressed: zstd decompresses at hundreds of MB/s, and
level 3 is the default because level 19 is only 11 to 25 % smaller for over 100 times the
time (README, "Edge workflow", has the measurements). Quantized GGUF weights barely compress
(94 % at level 3), so model files are stored as they are: an operator can check them with
sha256sum straight out of the tar. The whole image.tar is one zstd frame with its size and
checksum, so stock `zstd -t` and `zstd -d` handle it.

On read, the image part is decompressed in the same pass that hashes it (verify.py), the
decompressed bytes hashed too and capped at the signed tar_size (a decompression bomb stops
there). The decompressor thus sees bytes whose digest is not yet confirmed; it is libzstd,
fuzzed continuously upstream, its window capped at 128 MiB, and nothing it produces is used
before both digests match.
"""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Any, BinaryIO, cast

import zstandard

from components.ops.bundle.files import CHUNK
from components.ops.bundle.spool import _Spool
from components.ops.bundle.tarfmt import _Member, _padding, _Reader

#: zstd level of the image part: measured on the reference image (README, "Edge workflow").
ZSTD_LEVEL = 3
#: Decompression memory cap (zstd's own default limit, said out loud): 128 MiB of window.
ZSTD_MAX_WINDOW = 1 << 27


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
