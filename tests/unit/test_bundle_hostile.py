"""Hostile input to `tizi bundle verify|load|create`: every bad input gets one clear line.

Each case asserts exit code 1 (or BundleError from the core), one line on stderr naming
what is wrong, no traceback, and that nothing was loaded or written. No Docker: a fake
`docker` on PATH records its calls and what `docker load` received, so the
time-of-check/time-of-use cases can assert that the engine got exactly the verified bytes.
Every bundle here is signed by a test key (the manifest cases sign their odd manifests too,
so the checks behind the signature are reached); the refusals about signatures themselves
are in tests/unit/test_bundle_signing.py. The real-Docker round trip is in
tests/edge/test_edge_bundle.py.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import re
import socket
import stat
import subprocess
import sys
import tarfile
import tempfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import zstandard
from click.testing import CliRunner, Result
from minisign import KeyPair  # type: ignore[import-untyped]

from components.cli import main
from components.ops import bundle as core
from components.ops.bundle import MAX_MANIFEST, MAX_PARTS, BundleError, load_bundle, verify_bundle
from components.ops.bundle import docker as bundle_docker
from components.ops.bundle import load as bundle_load
from components.ops.bundle import spool as bundle_spool
from components.ops.bundle import verify as bundle_verify

REPO = Path(__file__).resolve().parents[2]
IMAGE_REF = "tizi/inference-service:0.1.0"
IMAGE_ID = "sha256:" + "5e" * 32
#: what `docker save` gives and `docker load` must get: incompressible, so the compressed
#: part is about as long and byte offsets into it mean something
IMAGE_BYTES = b"".join(hashlib.sha256(b"%d" % i).digest() for i in range(192)) + b"the verified image\n"
MODEL_BIN = b"weights\n" * 300
#: the test signing key; its public half is what verify and load are given
KEYS = KeyPair.generate()
PUBLIC = KEYS.public_key
SIGNED_AT = 1_767_225_600


def sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def packed(data: bytes) -> bytes:
    """image.tar as the bundle stores it: one zstd frame with its size and checksum."""
    return zstandard.ZstdCompressor(level=3, write_checksum=True).compress(data)


def unpacked(data: bytes) -> bytes:
    """The decompressed image part; data that is not zstd stands for itself (its manifest
    entry then says what it would decompress to, for cases that test exactly that)."""
    try:
        return zstandard.ZstdDecompressor().decompress(data)
    except zstandard.ZstdError:
        return data


IMAGE_ZST = packed(IMAGE_BYTES)
MODEL_JSON = json.dumps({"file": "model.bin", "sha256": sha(MODEL_BIN), "languages": ["ary"]}).encode()
PARTS: list[tuple[str, bytes]] = [
    ("image.tar.zst", IMAGE_ZST),
    ("model/model.bin", MODEL_BIN),
    ("model/model.json", MODEL_JSON),
]


# -- building bundles without Docker ---------------------------------------------------------


def part_entry(path: str, data: bytes) -> dict[str, Any]:
    entry: dict[str, Any] = {
        "path": path, "kind": "image" if path == "image.tar.zst" else "model",
        "size": len(data), "sha256": sha(data),
    }  # fmt: skip
    if path == "image.tar.zst":
        tar = unpacked(data)
        entry.update(tar_size=len(tar), tar_sha256=sha(tar))
    return entry


def manifest_for(contents: list[tuple[str, bytes]] = PARTS, **changes: Any) -> dict[str, Any]:
    manifest: dict[str, Any] = {
        "format": "tizi-bundle/2",
        "created": "2026-01-01T00:00:00Z",
        "images": [{"ref": IMAGE_REF, "id": IMAGE_ID}],
        "spec": {"service": {"name": "inference", "port": 8080}},
        "parts": [part_entry(p, d) for p, d in contents],
    }
    manifest.update(changes)
    return manifest


def raw_manifest(manifest: dict[str, Any]) -> bytes:
    return json.dumps(manifest, indent=2, sort_keys=True).encode()


def signature_for(raw: bytes, keys: Any = KEYS) -> bytes:
    """What create writes as manifest.json.minisig, for any bytes (a signer may sign garbage)."""
    return core.sign_manifest(raw, keys.secret_key, SIGNED_AT)


Member = tuple[tarfile.TarInfo, bytes]


def member(name: str, data: bytes = b"", kind: bytes = tarfile.REGTYPE, **attrs: Any) -> Member:
    info = tarfile.TarInfo(name)
    info.type, info.size, info.mtime, info.mode = kind, len(data), 1_700_000_000, 0o644
    for key, value in attrs.items():
        setattr(info, key, value)
    return info, data


def tar_bytes(members: list[Member], fmt: int = tarfile.PAX_FORMAT, **tar_kw: Any) -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=fmt, **tar_kw) as tar:
        for info, data in members:
            tar.addfile(info, io.BytesIO(data) if data or info.isreg() else None)
    return buf.getvalue()


def head(raw: bytes, keys: Any = KEYS) -> list[Member]:
    """manifest.json and its signature: the two members every bundle starts with."""
    return [member("manifest.json", raw), member("manifest.json.minisig", signature_for(raw, keys))]


def valid_members(
    manifest: dict[str, Any] | None = None, parts: list[tuple[str, bytes]] = PARTS, keys: Any = KEYS
) -> list[Member]:
    raw = raw_manifest(manifest or manifest_for(parts))
    return [*head(raw, keys), *(member(p, d) for p, d in parts)]


def bundle_bytes(
    manifest: dict[str, Any] | None = None, parts: list[tuple[str, bytes]] = PARTS, keys: Any = KEYS
) -> bytes:
    return tar_bytes(valid_members(manifest, parts, keys))


def with_manifest_raw(raw: bytes) -> bytes:
    return tar_bytes([*head(raw), *(member(p, d) for p, d in PARTS)])


def header_offsets(data: bytes) -> dict[str, int]:
    """Member name -> offset of its (ustar) header, for byte-level surgery."""
    out: dict[str, int] = {}
    with tarfile.open(fileobj=io.BytesIO(data), mode="r:") as tar:
        for m in tar.getmembers():
            out[m.name] = m.offset
    return out


def rechecksum(data: bytearray, at: int) -> None:
    block = data[at : at + 512]
    block[148:156] = b" " * 8
    data[at + 148 : at + 156] = b"%06o\0 " % sum(block)


def patched(data: bytes, name: str, rel: int, new: bytes, fix_checksum: bool = True) -> bytes:
    out = bytearray(data)
    at = header_offsets(data)[name]
    out[at + rel : at + rel + len(new)] = new
    if fix_checksum:
        rechecksum(out, at)
    return bytes(out)


def archive_end(data: bytes) -> int:
    """Offset just after the last member's padded data (where the end-of-archive starts)."""
    with tarfile.open(fileobj=io.BytesIO(data), mode="r:") as tar:
        last = tar.getmembers()[-1]
    return last.offset_data + -(-last.size // 512) * 512


VALID = bundle_bytes()


def without_end(data: bytes) -> bytes:
    return data[: archive_end(data)]


def nonzero_padding() -> bytes:
    raw = raw_manifest(manifest_for())
    assert len(raw) % 512, "the manifest must leave padding to poke"
    out = bytearray(VALID)
    out[512 + len(raw)] = 0x41
    return bytes(out)


def in_place_flip(data: bytes, offset: int) -> bytes:
    out = bytearray(data)
    out[offset] ^= 0xFF
    return bytes(out)


def image_data_offset(data: bytes) -> int:
    with tarfile.open(fileobj=io.BytesIO(data), mode="r:") as tar:
        return tar.getmember("image.tar.zst").offset_data


def pax_then(records: bytes, then: list[Member] | None = None) -> bytes:
    """A raw pax header with exactly `records`, then `then` (default: image.tar.zst)."""
    pax = member("././@PaxHeader", records, tarfile.XHDTYPE)
    rest = then if then is not None else [member("image.tar.zst", IMAGE_ZST)]
    return tar_bytes([*head(raw_manifest(manifest_for())), pax, *rest], tarfile.USTAR_FORMAT)


def pax_record(key: str, value: str) -> bytes:
    """One well-formed record: its length counts its own digits."""
    body = f" {key}={value}\n".encode()
    n = len(body) + 1
    while n != len(body) + len(str(n)):
        n = len(body) + len(str(n))
    return str(n).encode() + body


def manifest_variant(**changes: Any) -> bytes:
    return bundle_bytes(manifest_for(**changes))


def part_variant(index: int, **changes: Any) -> bytes:
    manifest = manifest_for()
    manifest["parts"][index].update(changes)
    return bundle_bytes(manifest)


def without_key(obj: dict[str, Any], key: str) -> dict[str, Any]:
    return {k: v for k, v in obj.items() if k != key}


# -- the cases ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class Case:
    id: str
    build: Callable[[Path], Path]
    match: str


def data_case(case_id: str, data: bytes | Callable[[], bytes], match: str) -> Case:
    def build(tmp: Path) -> Path:
        path = tmp / "bundle.tar"
        path.write_bytes(data() if callable(data) else data)
        return path

    return Case(case_id, build, match)


def fifo(tmp: Path) -> Path:
    os.mkfifo(tmp / "pipe.tar")
    return tmp / "pipe.tar"


def unix_socket(tmp: Path) -> Path:
    path = tmp / "s.tar"
    with socket.socket(socket.AF_UNIX) as s:
        s.bind(str(path))
    return path


def symlink_loop(tmp: Path) -> Path:
    (tmp / "a.tar").symlink_to(tmp / "b.tar")
    (tmp / "b.tar").symlink_to(tmp / "a.tar")
    return tmp / "a.tar"


def under_a_file(tmp: Path) -> Path:
    (tmp / "file").write_bytes(VALID)
    return tmp / "file" / "bundle.tar"


def make_dir(tmp: Path) -> Path:
    (tmp / "dir.tar").mkdir()
    return tmp / "dir.tar"


def image_swapped_in_place(tmp: Path) -> Path:
    """The image bytes changed after the manifest was written (same size)."""
    path = tmp / "bundle.tar"
    path.write_bytes(in_place_flip(VALID, image_data_offset(VALID) + 100))
    return path


FILE_CASES = [
    Case("path-missing", lambda tmp: tmp / "nope.tar", r"nope\.tar: No such file or directory"),
    Case("path-is-a-directory", make_dir, r"dir\.tar is a directory, not a bundle file"),
    Case("path-is-a-fifo", fifo, r"pipe\.tar is a FIFO, not a bundle file"),
    Case("path-is-dev-zero", lambda tmp: Path("/dev/zero"), r"/dev/zero is a character device"),
    Case("path-is-dev-null", lambda tmp: Path("/dev/null"), r"/dev/null is a character device"),
    Case("path-is-a-socket", unix_socket, r"s\.tar is a socket"),
    Case("path-symlink-loop", symlink_loop, r"a\.tar: Too many levels of symbolic links"),
    Case("path-name-too-long", lambda tmp: tmp / ("x" * 300), r"File name too long"),
    Case("path-under-a-file", under_a_file, r"bundle\.tar: Not a directory"),
    Case(
        "path-read-error-eio",
        lambda tmp: Path("/proc/self/mem"),
        r"cannot read at byte 0: Input/output error",
    ),
]

TAR_CASES = [
    data_case(
        "empty-file", b"", r"ends at byte 0 without the end-of-archive blocks: the bundle is truncated"
    ),
    data_case("only-zero-blocks", bytes(10240), r"an empty archive: not a tizi bundle"),
    data_case(
        "random-garbage", bytes(range(256)) * 8, r"bad tar header checksum at byte 0: .*not a tar file"
    ),
    data_case("gzip-not-tar", b"\x1f\x8b\x08\x00" + bytes(1020), r"bad tar header checksum at byte 0"),
    data_case("truncated-mid-header", VALID[:700], r"truncated"),
    data_case("truncated-mid-image", VALID[: image_data_offset(VALID) + 3000], r"truncated"),
    data_case(
        "truncated-after-manifest",
        lambda: VALID[: header_offsets(VALID)["image.tar.zst"]],
        r"lists \d+ bytes of parts, the file holds \d+: truncated",
    ),
    data_case(
        "no-end-of-archive", without_end(VALID), r"without the end-of-archive blocks: the bundle is truncated"
    ),
    data_case(
        "one-end-block-only",
        lambda: VALID[: archive_end(VALID) + 512],
        r"inside the end-of-archive blocks: the bundle is truncated",
    ),
    data_case("trailing-garbage", VALID + b"hidden payload", r"data after the end of the archive"),
    data_case("trailing-zero-record", VALID + bytes(10240), r"trailing bytes after the end of the archive"),
    data_case(
        "trailing-odd-zeros", VALID[:-512] + bytes(100), r"trailing bytes after the end of the archive"
    ),
    data_case(
        "second-archive-appended",
        lambda: without_end(VALID) + bytes(1024) + tar_bytes([member("x", b"y")]),
        r"data after the end of the archive",
    ),
    data_case(
        "extra-member-after-parts",
        lambda: tar_bytes([*valid_members(), member("evil.sh", b"rm -rf /")]),
        r"member 'evil\.sh' after the last part is not in the manifest",
    ),
    data_case(
        "duplicate-image-after-parts",
        lambda: tar_bytes([*valid_members(), member("image.tar.zst", b"other")]),
        r"duplicate member 'image\.tar\.zst'",
    ),
    data_case(
        "manifest-not-first",
        lambda: tar_bytes([member("image.tar.zst", IMAGE_ZST), *valid_members()]),
        r"the first member is 'image\.tar\.zst', not manifest\.json",
    ),
    data_case(
        "no-manifest", tar_bytes([member(p, d) for p, d in PARTS]), r"the first member is 'image\.tar\.zst'"
    ),
    data_case(
        "duplicate-manifest",
        lambda: tar_bytes([*valid_members()[:2], valid_members()[0], *valid_members()[2:]]),
        r"duplicate member 'manifest\.json'",
    ),
    data_case(
        "duplicate-signature",
        lambda: tar_bytes([*valid_members()[:2], valid_members()[1], *valid_members()[2:]]),
        r"duplicate member 'manifest\.json\.minisig'",
    ),
    data_case(
        "duplicate-part",
        lambda: tar_bytes([*valid_members()[:3], valid_members()[2], *valid_members()[3:]]),
        r"duplicate member 'image\.tar\.zst'",
    ),
    data_case(
        "member-not-in-manifest",
        lambda: tar_bytes([*valid_members()[:3], member("model/extra.bin", b"x"), *valid_members()[3:]]),
        r"member 'model/extra\.bin' is not in the manifest",
    ),
    data_case(
        "part-missing-from-tar",
        lambda: tar_bytes(valid_members()[:4]),
        r"parts missing from the bundle \(truncated\?\): model/model\.json",
    ),
    data_case(
        "parts-reordered",
        lambda: tar_bytes([*valid_members()[:2], *reversed(valid_members()[2:])]),
        r"member 'model/model\.json' is out of order: the manifest lists 'image\.tar\.zst' next",
    ),
    data_case(
        "member-dotdot",
        lambda: tar_bytes([*valid_members()[:3], member("model/../../etc/cron.d/x", b"x")]),
        r"member 'model/\.\./\.\./etc/cron\.d/x' has a '\.\.' component",
    ),
    data_case(
        "member-absolute",
        lambda: tar_bytes([*valid_members()[:3], member("/etc/passwd", b"root::0:0")]),
        r"member '/etc/passwd' has an absolute path",
    ),
    data_case(
        "member-control-chars",
        lambda: tar_bytes([*valid_members()[:3], member("model/\x1b[2Jx", b"x")]),
        r"member 'model/\\x1b\[2Jx' has a control character in its name",
    ),
    data_case(
        "member-symlink-as-image",
        lambda: tar_bytes(
            [*valid_members()[:3], member("image.tar.zst", kind=tarfile.SYMTYPE, linkname="/etc/shadow")]
        ),
        r"member 'image\.tar\.zst' is a symbolic link; a bundle holds only regular files",
    ),
    data_case(
        "member-hardlink",
        lambda: tar_bytes(
            [*valid_members()[:3], member("model/model.bin", kind=tarfile.LNKTYPE, linkname="image.tar.zst")]
        ),
        r"member 'model/model\.bin' is a hard link",
    ),
    data_case(
        "member-char-device",
        lambda: tar_bytes(
            [*valid_members()[:3], member("model/model.bin", kind=tarfile.CHRTYPE, devmajor=1, devminor=3)]
        ),
        r"is a character device",
    ),
    data_case(
        "member-block-device",
        lambda: tar_bytes(
            [*valid_members()[:3], member("model/model.bin", kind=tarfile.BLKTYPE, devmajor=8)]
        ),
        r"is a block device",
    ),
    data_case(
        "member-fifo",
        lambda: tar_bytes([*valid_members()[:3], member("model/model.bin", kind=tarfile.FIFOTYPE)]),
        r"member 'model/model\.bin' is a FIFO",
    ),
    data_case(
        "member-directory",
        lambda: tar_bytes([*valid_members()[:3], member("model/", kind=tarfile.DIRTYPE, mode=0o755)]),
        r"member 'model/' is a directory",
    ),
    data_case(
        "member-sparse",
        lambda: tar_bytes(
            [*valid_members()[:3], member("model/model.bin", MODEL_BIN, tarfile.GNUTYPE_SPARSE)]
        ),
        r"is a GNU sparse file",
    ),
    data_case(
        "member-unknown-type",
        lambda: tar_bytes([*valid_members()[:3], member("model/model.bin", MODEL_BIN, b"Z")]),
        r"is an entry of unknown type b'Z'",
    ),
    data_case(
        "gnu-longname-header",
        lambda: tar_bytes([*valid_members()[:3], member("model/" + "n" * 120, b"x")], tarfile.GNU_FORMAT),
        r"is a GNU long-name header",
    ),
    data_case(
        "global-pax-header",
        lambda: tar_bytes(valid_members(), pax_headers={"comment": "hello"}),
        r"is a global pax header",
    ),
    data_case(
        "pax-linkpath", lambda: pax_then(pax_record("linkpath", "/etc/shadow")), r"pax record 'linkpath'"
    ),
    data_case(
        "pax-gnu-sparse",
        lambda: pax_then(pax_record("GNU.sparse.size", "99")),
        r"pax record 'GNU\.sparse\.size'",
    ),
    data_case(
        "pax-malformed", lambda: pax_then(b"garbage without length\n"), r"pax header at byte \d+ is malformed"
    ),
    data_case(
        "pax-length-lies",
        lambda: pax_then(b"99 path=image.tar.zst\n"),
        r"pax header at byte \d+ is malformed",
    ),
    data_case(
        "pax-duplicate-key",
        lambda: pax_then(pax_record("path", "image.tar.zst") + pax_record("path", "evil")),
        r"sets 'path' twice",
    ),
    data_case(
        "pax-size-not-number", lambda: pax_then(pax_record("size", "-1")), r"pax size .* is not a number"
    ),
    data_case(
        "pax-path-renames-member",
        lambda: pax_then(pax_record("path", "../../escape")),
        r"member '\.\./\.\./escape' has a '\.\.' component",
    ),
    data_case(
        "pax-over-cap",
        lambda: pax_then(pax_record("mtime", "1" * 70_000)),
        r"pax header at byte \d+ is \d+ bytes, over the 65536 cap",
    ),
    data_case(
        "pax-before-end", lambda: pax_then(pax_record("mtime", "1"), then=[]), r"is not followed by a member"
    ),
    data_case(
        "pax-twice-in-a-row",
        lambda: pax_then(
            pax_record("mtime", "1"),
            then=[member("././@PaxHeader", pax_record("mtime", "2"), tarfile.XHDTYPE)],
        ),
        r"two pax headers in a row",
    ),
    data_case(
        "bad-header-checksum",
        lambda: patched(VALID, "image.tar.zst", 136, b"77777", fix_checksum=False),
        r"bad tar header checksum at byte \d+",
    ),
    data_case(
        "not-ustar-magic", lambda: patched(VALID, "image.tar.zst", 257, bytes(8)), r"is not a ustar header"
    ),
    data_case(
        "size-base-256",
        lambda: patched(VALID, "image.tar.zst", 124, b"\x80" + bytes(11)),
        r"base-256 size field",
    ),
    data_case(
        "size-not-octal",
        lambda: patched(VALID, "image.tar.zst", 124, b"0000000009x\0"),
        r"size field that is not an octal number",
    ),
    data_case(
        "name-not-utf8",
        lambda: tar_bytes(
            [*valid_members()[:3], member("model/\udcff.bin", b"x")],
            tarfile.USTAR_FORMAT,
            errors="surrogateescape",
        ),
        r"member name at byte \d+ is not valid UTF-8",
    ),
    data_case("nonzero-padding", nonzero_padding, r"non-zero bytes in the padding after manifest\.json"),
    data_case(
        "size-differs-from-manifest",
        lambda: tar_bytes(
            [*valid_members()[:2], member("image.tar.zst", IMAGE_ZST + b"x"), *valid_members()[3:]]
        ),
        rf"image\.tar\.zst: size {len(IMAGE_ZST) + 1} differs from the manifest's {len(IMAGE_ZST)}",
    ),
    Case(
        "sha256-mismatch",
        image_swapped_in_place,
        r"image\.tar\.zst: sha256 mismatch: the bundle is corrupted",
    ),
]

MANIFEST_CASES = [
    data_case(
        "manifest-over-1MiB",
        lambda: with_manifest_raw(b" " * (MAX_MANIFEST + 1)),
        r"manifest\.json is 1048577 bytes, over the 1048576-byte cap",
    ),
    data_case(
        "manifest-not-utf8",
        lambda: with_manifest_raw(b'{"format": "\xff"}'),
        r"manifest\.json is not valid UTF-8 \(byte 12\)",
    ),
    data_case(
        "manifest-not-json", lambda: with_manifest_raw(b"format: tizi"), r"manifest\.json is not valid JSON"
    ),
    data_case(
        "manifest-utf8-bom", lambda: with_manifest_raw(b"\xef\xbb\xbf{}"), r"manifest\.json is not valid JSON"
    ),
    data_case("manifest-is-a-list", lambda: with_manifest_raw(b"[]"), r"manifest\.json is not a JSON object"),
    data_case(
        "manifest-deep-nesting",
        lambda: with_manifest_raw(b"[" * 200_000 + b"]" * 200_000),
        r"manifest\.json is nested too deeply",
    ),
    data_case(
        "manifest-duplicate-key",
        lambda: with_manifest_raw(raw_manifest(manifest_for())[:-1] + b', "format": "tizi-bundle/1"}'),
        r"manifest\.json sets the key 'format' twice",
    ),
    data_case("manifest-nan", lambda: with_manifest_raw(b'{"format": NaN}'), r"manifest\.json holds NaN"),
    data_case("manifest-huge-float", lambda: with_manifest_raw(b'{"format": 1e999}'), r"number out of range"),
    data_case(
        "format-missing",
        lambda: bundle_bytes(without_key(manifest_for(), "format")),
        r"manifest\.json: field 'format' is missing",
    ),
    data_case(
        "format-other-version",
        lambda: manifest_variant(format="tizi-bundle/3"),
        r"manifest\.json: format is 'tizi-bundle/3', this tizi reads tizi-bundle/2",
    ),
    data_case(
        "format-1-signed",
        lambda: manifest_variant(format="tizi-bundle/1"),
        r"format is 'tizi-bundle/1', an unsigned bundle from an older tizi: create it again",
    ),
    data_case("format-not-string", lambda: manifest_variant(format=1), r"manifest\.json: format is 1"),
    data_case(
        "unknown-top-field",
        lambda: manifest_variant(extra=True),
        r"manifest\.json: field 'extra' is not part of",
    ),
    data_case(
        "created-not-string", lambda: manifest_variant(created=123), r"manifest\.json: created must be"
    ),
    data_case(
        "images-missing",
        lambda: bundle_bytes(without_key(manifest_for(), "images")),
        r"field 'images' is missing",
    ),
    data_case(
        "images-v1-image-field",
        lambda: manifest_variant(image={"ref": IMAGE_REF, "id": IMAGE_ID}),
        r"manifest\.json: field 'image' is not part of tizi-bundle/2",
    ),
    data_case(
        "images-not-list", lambda: manifest_variant(images="tizi"), r"manifest\.json: images must be a list"
    ),
    data_case(
        "images-empty", lambda: manifest_variant(images=[]), r"images has 0 entries; a bundle has 1 to 16"
    ),
    data_case(
        "images-over-cap",
        lambda: manifest_variant(images=[{"ref": f"tizi/x:{i}", "id": IMAGE_ID} for i in range(17)]),
        r"images has 17 entries",
    ),
    data_case(
        "image-not-object",
        lambda: manifest_variant(images=["tizi"]),
        r"manifest\.json: images\[0\] must be an object",
    ),
    data_case(
        "image-ref-missing",
        lambda: manifest_variant(images=[{"id": IMAGE_ID}]),
        r"manifest\.json: images\[0\]\.'ref' is missing",
    ),
    data_case(
        "image-extra-field",
        lambda: manifest_variant(images=[{"ref": IMAGE_REF, "id": IMAGE_ID, "tag": "x"}]),
        r"images\[0\]\.'tag' is not a field",
    ),
    data_case(
        "image-ref-not-string",
        lambda: manifest_variant(images=[{"ref": ["x"], "id": IMAGE_ID}]),
        r"images\[0\]\.ref is not an image reference",
    ),
    data_case(
        "image-ref-option-injection",
        lambda: manifest_variant(images=[{"ref": "--help", "id": IMAGE_ID}]),
        r"images\[0\]\.ref is not an image reference: '--help'",
    ),
    data_case(
        "image-ref-terminal-escape",
        lambda: manifest_variant(images=[{"ref": "tizi\x1b]0;pwned\x07", "id": IMAGE_ID}]),
        r"images\[0\]\.ref is not an image reference: 'tizi\\x1b",
    ),
    data_case(
        "image-id-malformed",
        lambda: manifest_variant(images=[{"ref": IMAGE_REF, "id": "sha256:xyz"}]),
        r"images\[0\]\.id must be sha256: and 64 hex digits",
    ),
    data_case(
        "image-ref-twice",
        lambda: manifest_variant(images=[{"ref": IMAGE_REF, "id": IMAGE_ID}] * 2),
        r"images\[1\]\.ref 'tizi/inference-service:0\.1\.0' is listed twice",
    ),
    data_case(
        "spec-not-object", lambda: manifest_variant(spec=[1, 2]), r"manifest\.json: spec must be an object"
    ),
    data_case(
        "parts-missing",
        lambda: bundle_bytes(without_key(manifest_for(), "parts")),
        r"field 'parts' is missing",
    ),
    data_case(
        "parts-not-list",
        lambda: manifest_variant(parts={"image.tar.zst": 1}),
        r"manifest\.json: parts must be a list",
    ),
    data_case("parts-empty", lambda: manifest_variant(parts=[]), r"parts has 0 entries"),
    data_case(
        "parts-over-cap",
        lambda: manifest_variant(parts=[manifest_for()["parts"][0]] * (MAX_PARTS + 1)),
        r"parts has 257 entries; a bundle has 1 to 256",
    ),
    data_case(
        "part-not-object", lambda: manifest_variant(parts=["image.tar.zst"]), r"parts\[0\] must be an object"
    ),
    data_case(
        "part-path-missing",
        lambda: manifest_variant(parts=[without_key(manifest_for()["parts"][0], "path")]),
        r"parts\[0\]\.path is missing",
    ),
    data_case(
        "part-extra-field",
        lambda: part_variant(1, mode=0o4755),
        r"parts\[1\]\.'mode' is not a field of a model part",
    ),
    data_case(
        "model-part-with-tar-size",
        lambda: part_variant(1, tar_size=10),
        r"parts\[1\]\.'tar_size' is not a field of a model part",
    ),
    data_case(
        "image-part-tar-size-missing",
        lambda: manifest_variant(
            parts=[without_key(manifest_for()["parts"][0], "tar_size"), *manifest_for()["parts"][1:]]
        ),
        r"parts\[0\]\.tar_size is missing",
    ),
    data_case(
        "image-part-tar-size-negative",
        lambda: part_variant(0, tar_size=-5),
        r"parts\[0\]\.tar_size must be an integer from 0",
    ),
    data_case(
        "image-part-tar-sha256-short",
        lambda: part_variant(0, tar_sha256="abc"),
        r"parts\[0\]\.tar_sha256 must be 64 lowercase hex digits, not 'abc'",
    ),
    data_case(
        "image-part-uncompressed-v1-name",
        lambda: bundle_bytes(parts=[("image.tar", IMAGE_BYTES), *PARTS[1:]]),
        r"parts\[0\]\.path 'image\.tar' is neither image\.tar\.zst nor model/<file>",
    ),
    data_case("part-path-not-string", lambda: part_variant(1, path=7), r"parts\[1\]\.path must be a string"),
    data_case(
        "part-path-dotdot",
        lambda: part_variant(1, path="model/../../etc/passwd"),
        r"parts\[1\]\.path 'model/\.\./\.\./etc/passwd' is neither",
    ),
    data_case(
        "part-path-absolute",
        lambda: part_variant(1, path="/etc/passwd"),
        r"parts\[1\]\.path '/etc/passwd' is neither",
    ),
    data_case(
        "part-path-hidden",
        lambda: part_variant(1, path="model/.bashrc"),
        r"parts\[1\]\.path 'model/\.bashrc' is neither",
    ),
    data_case(
        "part-path-subdir",
        lambda: part_variant(1, path="model/a/b.bin"),
        r"parts\[1\]\.path 'model/a/b\.bin' is neither",
    ),
    data_case(
        "part-path-outside-model",
        lambda: part_variant(1, path="etc/x"),
        r"parts\[1\]\.path 'etc/x' is neither",
    ),
    data_case(
        "part-path-too-long",
        lambda: part_variant(1, path="model/" + "a" * 200),
        r"parts\[1\]\.path .* is neither",
    ),
    data_case(
        "part-kind-wrong",
        lambda: part_variant(0, kind="model"),
        r"parts\[0\]\.kind must be 'image' for image\.tar\.zst",
    ),
    data_case(
        "part-size-negative", lambda: part_variant(1, size=-1), r"parts\[1\]\.size must be an integer from 0"
    ),
    data_case(
        "part-size-bool",
        lambda: part_variant(1, size=True),
        r"parts\[1\]\.size must be an integer .* not True",
    ),
    data_case(
        "part-size-string",
        lambda: part_variant(1, size="2400"),
        r"parts\[1\]\.size must be an integer .* not '2400'",
    ),
    data_case(
        "part-size-float",
        lambda: part_variant(1, size=2400.0),
        r"parts\[1\]\.size must be an integer .* not 2400\.0",
    ),
    data_case(
        "part-size-huge",
        lambda: part_variant(1, size=2**41),
        r"parts\[1\]\.size must be an integer from 0 to 1099511627776",
    ),
    data_case(
        "part-sha256-upper",
        lambda: part_variant(1, sha256=sha(MODEL_BIN).upper()),
        r"parts\[1\]\.sha256 must be 64 lowercase hex digits",
    ),
    data_case(
        "part-sha256-short",
        lambda: part_variant(1, sha256="abc"),
        r"parts\[1\]\.sha256 must be 64 lowercase hex digits, not 'abc'",
    ),
    data_case(
        "parts-duplicate-path",
        lambda: manifest_variant(parts=[*manifest_for()["parts"], manifest_for()["parts"][1]]),
        r"parts\[3\]\.path 'model/model\.bin' is listed twice",
    ),
    data_case(
        "parts-without-image",
        lambda: bundle_bytes(parts=PARTS[1:]),
        r"manifest\.json: parts does not list image\.tar\.zst",
    ),
    data_case(
        "parts-larger-than-file",
        lambda: tar_bytes(
            head(
                raw_manifest(manifest_for(parts=[{**part_entry("image.tar.zst", IMAGE_ZST), "size": 10**7}]))
            )
        ),
        r"lists 10000000 bytes of parts, the file holds \d+: truncated",
    ),
    data_case(
        "model-json-not-json",
        lambda: bundle_bytes(parts=[*PARTS[:2], ("model/model.json", b"{oops")]),
        r"model/model\.json is not valid JSON",
    ),
    data_case(
        "model-json-wrong-file",
        lambda: bundle_bytes(
            parts=[*PARTS[:2], ("model/model.json", b'{"file": "other.bin", "sha256": "00"}')]
        ),
        r"model/model\.json names the model file 'other\.bin', which is not in the bundle",
    ),
    data_case(
        "model-json-wrong-digest",
        lambda: bundle_bytes(
            parts=[
                *PARTS[:2],
                ("model/model.json", json.dumps({"file": "model.bin", "sha256": "0" * 64}).encode()),
            ]
        ),
        r"model/model\.json: its sha256 does not match model/model\.bin",
    ),
]

CASES = FILE_CASES + TAR_CASES + MANIFEST_CASES


@pytest.fixture(autouse=True)
def bundle_keys(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> tuple[Path, Path]:
    """The test key pair as files, named by the environment variables the CLI reads, so
    every command here is given the right key unless a test says otherwise."""
    keys = tmp_path / "keys"
    keys.mkdir()
    secret, public = keys / "test.key", keys / "test.pub"
    secret.write_bytes(bytes(KEYS.secret_key) + b"\n")
    secret.chmod(0o600)
    public.write_bytes(bytes(PUBLIC) + b"\n")
    monkeypatch.setenv("TIZI_BUNDLE_PUBKEY", str(public))
    monkeypatch.setenv("TIZI_BUNDLE_SECRET_KEY", str(secret))
    monkeypatch.delenv("TIZI_BUNDLE_PASSPHRASE", raising=False)
    return secret, public


def test_there_are_at_least_forty_distinct_hostile_inputs() -> None:
    ids = [c.id for c in CASES]
    assert len(ids) == len(set(ids))
    assert len(ids) >= 40


# -- the fake docker ---------------------------------------------------------------------------

FAKE_DOCKER = """\
#!{python}
'''A stand-in for the docker CLI: records each call; `load` keeps what it was fed.'''
import json, os, pathlib, sys

state = pathlib.Path(os.environ["FAKE_DOCKER_DIR"])
args = sys.argv[1:]
with open(state / "calls.jsonl", "a") as log:
    log.write(json.dumps({{"args": args, "DOCKER_HOST": os.environ.get("DOCKER_HOST")}}) + "\\n")
fail = os.environ.get("FAKE_DOCKER_FAIL", "").split()
if fail and args[: len(fail)] == fail:
    sys.stderr.write("Error response from daemon:\\n  something broke\\n\\tbadly\\n")
    sys.exit(1)
if args[:1] == ["load"]:
    (state / "loaded.bin").write_bytes(sys.stdin.buffer.read())
    print("Loaded image: " + os.environ.get("FAKE_DOCKER_REF", "x"))
elif args[:2] == ["image", "inspect"]:
    ref = args[-1]
    default = os.environ.get("FAKE_DOCKER_ID", "")
    found = json.loads(os.environ.get("FAKE_DOCKER_IDS", "{{}}")).get(ref, default)
    labels = json.loads(os.environ.get("FAKE_DOCKER_LABELS", "{{}}")).get(ref)
    print(found + (" " + json.dumps(labels) if "Labels" in args[3] else ""))
elif args[:1] == ["save"]:
    sys.stdout.buffer.write(pathlib.Path(os.environ["FAKE_DOCKER_SAVE"]).read_bytes())
elif args[:1] == ["create"]:
    print("fakecontainer")
elif args[:1] == ["cp"]:
    import tarfile
    source = pathlib.Path(os.environ["FAKE_DOCKER_MODEL_DIR"])
    with tarfile.open(fileobj=sys.stdout.buffer, mode="w|") as tar:
        for path in sorted(source.iterdir()):
            tar.add(path, arcname="./" + path.name)
elif args[:1] == ["rm"]:
    pass
else:
    sys.stderr.write("fake docker: unsupported " + " ".join(args) + "\\n")
    sys.exit(2)
"""


@dataclass
class FakeDocker:
    state: Path
    bin: Path

    def calls(self) -> list[list[str]]:
        log = self.state / "calls.jsonl"
        if not log.exists():
            return []
        return [json.loads(line)["args"] for line in log.read_text().splitlines()]

    def loaded(self) -> bytes | None:
        path = self.state / "loaded.bin"
        return path.read_bytes() if path.exists() else None


@pytest.fixture
def spool_parent(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """$TMPDIR for the test, so leftovers of the spool are visible."""
    parent = tmp_path / "tmpdir"
    parent.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(parent))
    return parent


@pytest.fixture
def fake_docker(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, spool_parent: Path) -> FakeDocker:
    state = tmp_path / "fake-docker"
    bindir = state / "bin"
    bindir.mkdir(parents=True)
    script = bindir / "docker"
    script.write_text(FAKE_DOCKER.format(python=sys.executable))
    script.chmod(0o755)
    save = tmp_path / "saved-image.tar"
    save.write_bytes(IMAGE_BYTES)
    monkeypatch.setenv("PATH", f"{bindir}{os.pathsep}/usr/bin{os.pathsep}/bin")
    monkeypatch.setenv("FAKE_DOCKER_DIR", str(state))
    monkeypatch.setenv("FAKE_DOCKER_ID", IMAGE_ID)
    monkeypatch.setenv("FAKE_DOCKER_REF", IMAGE_REF)
    monkeypatch.setenv("FAKE_DOCKER_SAVE", str(save))
    monkeypatch.delenv("FAKE_DOCKER_FAIL", raising=False)
    monkeypatch.delenv("DOCKER_HOST", raising=False)
    return FakeDocker(state, bindir)


@pytest.fixture
def no_docker(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    empty = tmp_path / "empty-bin"
    empty.mkdir()
    monkeypatch.setenv("PATH", str(empty))


# -- assertions --------------------------------------------------------------------------------


def invoke(*args: str) -> Result:
    return CliRunner().invoke(main, list(args))


def assert_one_line_refusal(result: Result, match: str) -> str:
    """Exit 1, nothing on stdout, exactly one line on stderr matching `match`, no traceback,
    and no exception escaped the command (CliRunner turns one into exit 1 silently)."""
    assert result.exception is None or isinstance(result.exception, SystemExit), repr(result.exception)
    assert result.exit_code == 1, result.output
    assert "Traceback" not in result.output
    assert result.stdout == ""
    lines = result.stderr.splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("Error: ")
    assert re.search(match, lines[0]), lines[0]
    return lines[0]


def open_fds() -> set[str]:
    return set(os.listdir("/proc/self/fd"))


@pytest.fixture
def no_leaks(spool_parent: Path) -> Iterator[None]:
    """No descriptor and no spool file outlives the call."""
    before = open_fds()
    yield
    assert open_fds() <= before | {"0", "1", "2"}
    assert list(spool_parent.iterdir()) == []


def case_ids(cases: list[Case]) -> list[str]:
    return [c.id for c in cases]


# -- verify and load: every case -----------------------------------------------------------------


@pytest.mark.parametrize("case", CASES, ids=case_ids(CASES))
def test_verify_refuses_with_one_line_naming_the_problem(case: Case, tmp_path: Path, no_leaks: None) -> None:
    path = case.build(tmp_path)
    with pytest.raises(BundleError, match=case.match) as info:
        verify_bundle(path, PUBLIC)
    assert "\n" not in str(info.value)
    assert_one_line_refusal(invoke("bundle", "verify", str(path)), r"^Error: REFUSED: .*" + case.match)


@pytest.mark.parametrize("case", CASES, ids=case_ids(CASES))
def test_load_refuses_and_loads_nothing(
    case: Case, tmp_path: Path, fake_docker: FakeDocker, no_leaks: None
) -> None:
    path = case.build(tmp_path)
    assert_one_line_refusal(invoke("bundle", "load", str(path)), r"^Error: REFUSED: .*" + case.match)
    assert fake_docker.calls() == []
    assert fake_docker.loaded() is None


def test_the_valid_bundle_the_cases_start_from_is_accepted(
    tmp_path: Path, fake_docker: FakeDocker, no_leaks: None
) -> None:
    """The cases are refused for what they change, not because the base is wrong."""
    path = tmp_path / "good.tar"
    path.write_bytes(VALID)
    assert verify_bundle(path, PUBLIC) == manifest_for()
    result = invoke("bundle", "verify", str(path))
    assert result.exit_code == 0 and result.output.startswith(
        f"OK {path}: {IMAGE_REF} (3 parts verified), signed"
    )
    result = invoke("bundle", "load", str(path), "--docker-host", "ssh://edge-site")
    assert result.exit_code == 0, result.output
    assert fake_docker.loaded() == IMAGE_BYTES
    assert fake_docker.calls() == [
        ["load", "--quiet"], ["image", "inspect", "--format", "{{.Id}}", IMAGE_REF]
    ]  # fmt: skip
    calls = [json.loads(line) for line in (fake_docker.state / "calls.jsonl").read_text().splitlines()]
    assert {c["DOCKER_HOST"] for c in calls} == {"ssh://edge-site"}


def test_a_long_member_name_through_pax_is_accepted(tmp_path: Path) -> None:
    """Names over 100 bytes travel in a pax record, as tarfile writes them; that is fine."""
    parts = [*PARTS[:2], ("model/" + "w" * 120 + ".bin", b"long")]
    path = tmp_path / "long.tar"
    path.write_bytes(bundle_bytes(parts=parts))
    assert [p["path"] for p in verify_bundle(path, PUBLIC)["parts"]] == [p for p, _ in parts]


# -- load: docker and the spool ----------------------------------------------------------------


@pytest.fixture
def good(tmp_path: Path) -> Path:
    path = tmp_path / "good.tar"
    path.write_bytes(VALID)
    return path


def test_load_without_docker_on_path(good: Path, no_docker: None, spool_parent: Path) -> None:
    assert_one_line_refusal(invoke("bundle", "load", str(good)), r"REFUSED: the docker CLI is not on PATH")
    assert list(spool_parent.iterdir()) == []


def test_load_when_docker_load_fails(
    good: Path, fake_docker: FakeDocker, monkeypatch: pytest.MonkeyPatch, no_leaks: None
) -> None:
    monkeypatch.setenv("FAKE_DOCKER_FAIL", "load")
    line = assert_one_line_refusal(
        invoke("bundle", "load", str(good)),
        r"REFUSED: docker load failed: Error response from daemon: something broke badly$",
    )
    assert "\t" not in line
    assert fake_docker.calls() == [["load", "--quiet"]]


def test_load_when_the_engine_reports_another_id(
    good: Path, fake_docker: FakeDocker, monkeypatch: pytest.MonkeyPatch, no_leaks: None
) -> None:
    monkeypatch.setenv("FAKE_DOCKER_ID", "sha256:" + "0" * 64)
    assert_one_line_refusal(
        invoke("bundle", "load", str(good)),
        rf"REFUSED: loaded {IMAGE_REF} has id 'sha256:0+', the manifest says {IMAGE_ID}",
    )


def test_load_when_image_inspect_fails(
    good: Path, fake_docker: FakeDocker, monkeypatch: pytest.MonkeyPatch, no_leaks: None
) -> None:
    monkeypatch.setenv("FAKE_DOCKER_FAIL", "image inspect")
    assert_one_line_refusal(
        invoke("bundle", "load", str(good)),
        r"REFUSED: docker image inspect failed: Error response from daemon",
    )


def test_load_refuses_before_copying_when_tmpdir_is_too_small(
    good: Path, fake_docker: FakeDocker, monkeypatch: pytest.MonkeyPatch, no_leaks: None
) -> None:
    real = os.statvfs

    class Tiny:
        def __init__(self, path: Any) -> None:
            st = real(path)
            self.f_frsize, self.f_bavail = st.f_frsize, 1

    monkeypatch.setattr(bundle_spool.os, "statvfs", Tiny)
    assert_one_line_refusal(
        invoke("bundle", "load", str(good)),
        rf"REFUSED: .*tmpdir has \d+ bytes free, the verified copy of image\.tar needs {len(IMAGE_BYTES)}: "
        "set TMPDIR",
    )
    assert fake_docker.calls() == []


def test_load_with_an_unusable_tmpdir(
    good: Path, fake_docker: FakeDocker, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(tempfile, "tempdir", str(good.parent / "no-such-tmp"))
    assert_one_line_refusal(
        invoke("bundle", "load", str(good)),
        r"REFUSED: cannot create a private directory in .*no-such-tmp: No such file",
    )
    assert fake_docker.calls() == []


def test_spool_is_private_and_gone_afterwards(
    good: Path, fake_docker: FakeDocker, monkeypatch: pytest.MonkeyPatch, spool_parent: Path, no_leaks: None
) -> None:
    seen: dict[str, int] = {}
    real_load = bundle_docker._docker_load

    def inspecting(spooled: Any, docker_host: str | None) -> None:
        seen["file"] = stat.S_IMODE(os.fstat(spooled.fileno()).st_mode)
        [directory] = list(spool_parent.iterdir())
        seen["dir"] = stat.S_IMODE(directory.stat().st_mode)
        seen["names"] = len(list(directory.iterdir()))  # unnamed (O_TMPFILE) where the kernel allows
        real_load(spooled, docker_host)

    monkeypatch.setattr(bundle_load, "_docker_load", inspecting)
    assert load_bundle(good, PUBLIC) == [IMAGE_REF]
    assert seen["file"] == 0o600 and seen["dir"] == 0o700 and seen["names"] <= 1
    assert list(spool_parent.iterdir()) == []


# -- time of check, time of use ----------------------------------------------------------------

EVIL_IMAGE = b"an image that was never verified\n" * 100
EVIL = bundle_bytes(parts=[("image.tar.zst", packed(EVIL_IMAGE)), *PARTS[1:]])


def test_the_bundle_path_is_opened_once(
    good: Path, fake_docker: FakeDocker, monkeypatch: pytest.MonkeyPatch
) -> None:
    opened: list[str] = []
    real_open = os.open

    def counting(path: Any, flags: int, *args: Any, **kw: Any) -> int:
        if os.fspath(path) == os.fspath(good):
            opened.append(os.fspath(path))
        return real_open(path, flags, *args, **kw)

    monkeypatch.setattr(os, "open", counting)
    assert load_bundle(good, PUBLIC) == [IMAGE_REF]
    assert len(opened) == 1


@pytest.mark.parametrize("how", ["replaced", "rewritten-in-place"])
def test_a_file_changed_after_verification_is_never_loaded(
    how: str, good: Path, fake_docker: FakeDocker, monkeypatch: pytest.MonkeyPatch, no_leaks: None
) -> None:
    """Between the check and `docker load`, the file is swapped (a new inode renamed over it)
    or rewritten in place; docker still gets the bytes that were hashed, from the spool."""
    real_load = bundle_docker._docker_load

    def swap_then_load(spooled: Any, docker_host: str | None) -> None:
        if how == "replaced":
            evil = good.with_name("evil.tar")
            evil.write_bytes(EVIL)
            os.replace(evil, good)
        else:
            with open(good, "r+b") as f:
                f.write(EVIL)
        real_load(spooled, docker_host)

    monkeypatch.setattr(bundle_load, "_docker_load", swap_then_load)
    assert load_bundle(good, PUBLIC) == [IMAGE_REF]
    assert good.read_bytes()[: len(EVIL)] == EVIL
    assert fake_docker.loaded() == IMAGE_BYTES


def test_a_file_replaced_while_it_is_read_loads_what_was_read(
    good: Path, fake_docker: FakeDocker, monkeypatch: pytest.MonkeyPatch, no_leaks: None
) -> None:
    """Renamed over after the manifest was read: the open descriptor keeps the old file,
    whose bytes are the ones both hashed and loaded."""
    real_parse = bundle_verify._parse_manifest

    def parse_then_swap(raw: bytes) -> dict[str, Any]:
        manifest = real_parse(raw)
        evil = good.with_name("evil.tar")
        evil.write_bytes(EVIL)
        os.replace(evil, good)
        return manifest

    monkeypatch.setattr(bundle_verify, "_parse_manifest", parse_then_swap)
    assert load_bundle(good, PUBLIC) == [IMAGE_REF]
    assert fake_docker.loaded() == IMAGE_BYTES


def test_a_file_rewritten_in_place_while_it_is_read_is_refused(
    good: Path, fake_docker: FakeDocker, monkeypatch: pytest.MonkeyPatch, no_leaks: None
) -> None:
    """Rewritten in place after the manifest was read: the same descriptor now sees other
    image bytes, their digest is not the manifest's, and docker is never called."""
    real_parse = bundle_verify._parse_manifest
    offset = image_data_offset(VALID)

    def parse_then_rewrite(raw: bytes) -> dict[str, Any]:
        manifest = real_parse(raw)
        with open(good, "r+b") as f:
            f.seek(offset)
            f.write(b"X" * 64)
        return manifest

    monkeypatch.setattr(bundle_verify, "_parse_manifest", parse_then_rewrite)
    with pytest.raises(BundleError, match=r"image\.tar\.zst: sha256 mismatch"):
        load_bundle(good, PUBLIC)
    assert fake_docker.calls() == []


# -- create ------------------------------------------------------------------------------------


@pytest.fixture
def model_dir(tmp_path: Path) -> Path:
    d = tmp_path / "model"
    d.mkdir()
    (d / "model.bin").write_bytes(MODEL_BIN)
    (d / "model.json").write_bytes(MODEL_JSON)
    return d


def test_create_writes_what_verify_accepts(tmp_path: Path, fake_docker: FakeDocker, model_dir: Path) -> None:
    out = tmp_path / "out" / "site.tar"
    spec = tmp_path / "spec.yaml"
    spec.write_text("service:\n  name: inference\n  port: 8080\n")
    result = invoke(
        "bundle", "--image", IMAGE_REF, "-o", str(out), "--spec", str(spec), "--model-dir", str(model_dir)
    )
    assert result.exit_code == 0, result.output
    manifest = verify_bundle(out, PUBLIC)
    assert manifest["spec"] == {"service": {"name": "inference", "port": 8080}}
    assert manifest["images"] == [{"ref": IMAGE_REF, "id": IMAGE_ID}]
    image, *models = manifest["parts"]
    assert (image["path"], image["tar_size"], image["tar_sha256"]) == (
        "image.tar.zst",
        len(IMAGE_BYTES),
        sha(IMAGE_BYTES),
    )
    assert [(p["path"], p["sha256"]) for p in models] == [
        ("model/model.bin", sha(MODEL_BIN)),
        ("model/model.json", sha(MODEL_JSON)),
    ]
    assert sorted(p.name for p in out.parent.iterdir()) == ["site.tar"]


def test_create_takes_regular_files_from_the_model_dir_and_never_blocks(
    tmp_path: Path, fake_docker: FakeDocker, model_dir: Path
) -> None:
    """A symlink is archived as the file it points to (a symlink member would be refused by
    verify); a FIFO, a folder and a socket in the model dir are left out without opening."""
    (tmp_path / "outside.bin").write_bytes(b"linked weights")
    (model_dir / "linked.bin").symlink_to(tmp_path / "outside.bin")
    os.mkfifo(model_dir / "pipe.bin")
    (model_dir / "sub").mkdir()
    out = tmp_path / "site.tar"
    result = invoke("bundle", "-o", str(out), "--model-dir", str(model_dir))
    assert result.exit_code == 0, result.output
    parts = {p["path"]: p["sha256"] for p in verify_bundle(out, PUBLIC)["parts"]}
    assert set(parts) == {"image.tar.zst", "model/linked.bin", "model/model.bin", "model/model.json"}
    assert parts["model/linked.bin"] == sha(b"linked weights")


def read_only_dir(tmp: Path) -> Path:
    """A folder this process cannot create files in: mode 0555, or for root (who ignores
    modes) sysfs, where the kernel refuses new entries."""
    if os.geteuid() == 0:
        return Path("/sys")
    d = tmp / "ro"
    d.mkdir()
    d.chmod(0o555)
    return d


@dataclass(frozen=True)
class CreateCase:
    id: str
    args: Callable[[Path, Path], list[str]]
    match: str
    docker_fail: str = ""
    saves: bool = False  # whether docker save may run before the refusal
    env: tuple[tuple[str, str | None], ...] = ()  # environment for the case; None unsets


def key_file(tmp: Path, data: bytes) -> str:
    path = tmp / "signing.key"
    path.write_bytes(data)
    return str(path)


def encrypted_key(tmp: Path) -> str:
    """A secret key protected by the passphrase 'right horse' (minisign's scrypt)."""
    pair = KeyPair.generate()
    pair.secret_key.encrypt("right horse")
    return key_file(tmp, bytes(pair.secret_key) + b"\n")


def spec_file(tmp: Path, text: bytes) -> str:
    path = tmp / "spec.yaml"
    path.write_bytes(text)
    return str(path)


def model_dir_with(tmp: Path, name: str) -> str:
    d = tmp / "odd-model"
    d.mkdir()
    (d / name).write_bytes(b"x")
    return str(d)


def fifo_spec(tmp: Path) -> str:
    os.mkfifo(tmp / "spec.yaml")
    return str(tmp / "spec.yaml")


CREATE_CASES = [
    CreateCase(
        "output-is-a-directory",
        lambda t, m: ["-o", str(t)],
        r"is a directory; the bundle must be written to a file",
    ),
    CreateCase(
        "output-is-dev-null",
        lambda t, m: ["-o", "/dev/null"],
        r"/dev/null is a character device; the bundle must be written to a file",
    ),
    CreateCase(
        "output-name-too-long",
        lambda t, m: ["-o", str(t / ("n" * 300))],
        r"file name too long \(300 bytes, the file system allows 255\)",
    ),
    CreateCase(
        "output-dir-name-too-long",
        lambda t, m: ["-o", str(t / ("d" * 300) / "x.tar")],
        r"file name too long \(300 bytes",
    ),
    CreateCase(
        "output-in-read-only-folder",
        lambda t, m: ["-o", str(read_only_dir(t) / "site.tar")],
        r"cannot write .*site\.tar: (Operation not permitted|Permission denied|Read-only file system)",
    ),
    CreateCase(
        "output-under-a-file",
        lambda t, m: ["-o", str(Path(spec_file(t, b"a: 1")) / "x.tar")],
        r"x\.tar: Not a directory",
    ),
    CreateCase("output-dot-dot", lambda t, m: ["-o", str(t) + "/.."], r"not a file name"),
    CreateCase(
        "spec-missing",
        lambda t, m: ["--spec", str(t / "nope.yaml")],
        r"nope\.yaml: No such file or directory",
    ),
    CreateCase("spec-is-a-directory", lambda t, m: ["--spec", str(t)], r"is a directory, not a spec file"),
    CreateCase(
        "spec-is-a-fifo", lambda t, m: ["--spec", fifo_spec(t)], r"spec\.yaml is a FIFO, not a spec file"
    ),
    CreateCase(
        "spec-is-dev-zero",
        lambda t, m: ["--spec", "/dev/zero"],
        r"/dev/zero is a character device, not a spec file",
    ),
    CreateCase(
        "spec-invalid-yaml",
        lambda t, m: ["--spec", spec_file(t, b"a: [1, 2\nb: }")],
        r"spec\.yaml: not valid YAML: ",
    ),
    CreateCase(
        "spec-not-a-mapping",
        lambda t, m: ["--spec", spec_file(t, b"- 1\n- 2\n")],
        r"spec\.yaml: the spec must be a mapping",
    ),
    CreateCase(
        "spec-not-utf8",
        lambda t, m: ["--spec", spec_file(t, b"a: \xff\xfe")],
        r"spec\.yaml: not valid UTF-8 \(byte 3\)",
    ),
    CreateCase(
        "spec-yaml-aliases",
        lambda t, m: ["--spec", spec_file(t, b"a: &x [1, 2]\nb: [*x, *x]\n")],
        r"aliases \(\*name\) are not allowed in a spec",
    ),
    CreateCase(
        "spec-over-cap",
        lambda t, m: ["--spec", spec_file(t, b"a: 1\n" + b"#" * MAX_MANIFEST)],
        r"over 1048576 bytes, too large for a spec file",
    ),
    CreateCase(
        "spec-not-json-representable",
        lambda t, m: ["--spec", spec_file(t, b"when: 2026-01-01\n")],
        r"the spec cannot be written as JSON: Object of type date",
    ),
    CreateCase(
        "model-dir-missing", lambda t, m: ["--model-dir", str(t / "nope")], r"nope: No such file or directory"
    ),
    CreateCase(
        "model-dir-is-a-file",
        lambda t, m: ["--model-dir", spec_file(t, b"a: 1")],
        r"spec\.yaml is not a directory; --model-dir takes a directory",
    ),
    CreateCase(
        "model-dir-empty",
        lambda t, m: ["--model-dir", str((t / "empty").mkdir() or t / "empty")],
        r"no model files in .*empty",
    ),
    CreateCase(
        "model-file-hidden",
        lambda t, m: ["--model-dir", model_dir_with(t, ".env")],
        r"'\.env' is not a safe model file name",
    ),
    CreateCase(
        "model-file-with-space",
        lambda t, m: ["--model-dir", model_dir_with(t, "my model.bin")],
        r"'my model\.bin' is not a safe model file name",
    ),
    CreateCase(
        "image-ref-is-an-option", lambda t, m: ["--image", "--rm"], r"'--rm' is not an image reference"
    ),
    CreateCase(
        "image-ref-with-space", lambda t, m: ["--image", "tizi x"], r"'tizi x' is not an image reference"
    ),
    CreateCase(
        "docker-save-fails",
        lambda t, m: [],
        r"docker save failed: Error response from daemon: something broke badly",
        docker_fail="save",
        saves=True,
    ),
    CreateCase(
        "docker-inspect-fails",
        lambda t, m: [],
        r"docker image inspect failed: Error response from daemon",
        docker_fail="image inspect",
        saves=True,
    ),
    CreateCase(
        "no-secret-key",
        lambda t, m: [],
        r"no --secret-key \(or TIZI_BUNDLE_SECRET_KEY\): bundles are signed; .*tizi bundle keygen",
        env=(("TIZI_BUNDLE_SECRET_KEY", None),),
    ),
    CreateCase(
        "secret-key-missing", lambda t, m: ["--secret-key", str(t / "nope.key")], r"nope\.key: No such file"
    ),
    CreateCase(
        "secret-key-is-a-directory",
        lambda t, m: ["--secret-key", str(t)],
        r"is a directory, not a secret key file",
    ),
    CreateCase(
        "secret-key-is-a-fifo",
        lambda t, m: ["--secret-key", str(os.mkfifo(t / "k.key") or t / "k.key")],
        r"k\.key is a FIFO, not a secret key file",
    ),
    CreateCase(
        "secret-key-garbage",
        lambda t, m: ["--secret-key", key_file(t, b"hello\nworld\n")],
        r"signing\.key: not a minisign secret key file$",
    ),
    CreateCase(
        "secret-key-is-the-public-key",
        lambda t, m: ["--secret-key", key_file(t, bytes(PUBLIC) + b"\n")],
        r"signing\.key: not a minisign secret key file$",
    ),
    CreateCase(
        "secret-key-over-cap",
        lambda t, m: ["--secret-key", key_file(t, b"x" * 5000)],
        r"over 4096 bytes, too large for a secret key file",
    ),
    CreateCase(
        "secret-key-encrypted-no-passphrase",
        lambda t, m: ["--secret-key", encrypted_key(t)],
        r"the secret key needs a passphrase: set TIZI_BUNDLE_PASSPHRASE or run in a terminal",
    ),
    CreateCase(
        "secret-key-wrong-passphrase",
        lambda t, m: ["--secret-key", encrypted_key(t)],
        r"signing\.key: wrong passphrase, or a damaged secret key file",
        env=(("TIZI_BUNDLE_PASSPHRASE", "wrong horse"),),
    ),
    CreateCase(
        "secret-key-empty-passphrase",
        lambda t, m: ["--secret-key", encrypted_key(t)],
        r"TIZI_BUNDLE_PASSPHRASE is set but empty",
        env=(("TIZI_BUNDLE_PASSPHRASE", ""),),
    ),
    CreateCase(
        "image-given-twice",
        lambda t, m: ["--image", IMAGE_REF, "--image", IMAGE_REF],
        r"the image tizi/inference-service:0\.1\.0 is given twice",
    ),
    CreateCase(
        "too-many-images",
        lambda t, m: [a for i in range(17) for a in ("--image", f"tizi/x:{i}")],
        r"17 images given; a bundle holds 1 to 16",
    ),
    CreateCase(
        "zstd-level-too-high", lambda t, m: ["--level", "23"], r"zstd level 23: levels run from 1 to 22"
    ),
    CreateCase("zstd-level-zero", lambda t, m: ["--level", "0"], r"zstd level 0: levels run from 1 to 22"),
    CreateCase(
        "model-dir-and-no-model-files",
        lambda t, m: ["--no-model-files"],
        r"--model-dir and --no-model-files contradict each other",
    ),
]


@pytest.mark.parametrize("case", CREATE_CASES, ids=[c.id for c in CREATE_CASES])
def test_create_refuses_with_one_line_and_writes_nothing(
    case: CreateCase,
    tmp_path: Path,
    fake_docker: FakeDocker,
    model_dir: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    work = tmp_path / "work"
    work.mkdir()
    if case.docker_fail:
        monkeypatch.setenv("FAKE_DOCKER_FAIL", case.docker_fail)
    for name, value in case.env:
        if value is None:
            monkeypatch.delenv(name, raising=False)
        else:
            monkeypatch.setenv(name, value)
    args = case.args(work, model_dir)
    if "-o" not in args:
        args += ["-o", str(work / "site.tar")]
    if "--model-dir" not in args:
        args += ["--model-dir", str(model_dir)]
    before = sorted(work.rglob("*"))
    fds = open_fds()
    assert_one_line_refusal(invoke("bundle", *args), case.match)
    assert sorted(work.rglob("*")) == before  # no bundle, no .tizi-bundle-* leftovers
    assert open_fds() <= fds | {"0", "1", "2"}
    if not case.saves:
        assert fake_docker.calls() == []


def test_create_without_docker_on_path(tmp_path: Path, model_dir: Path, no_docker: None) -> None:
    assert_one_line_refusal(
        invoke("bundle", "-o", str(tmp_path / "x.tar"), "--model-dir", str(model_dir)),
        r"the docker CLI is not on PATH",
    )
    assert not (tmp_path / "x.tar").exists()


def test_create_never_replaces_a_device(tmp_path: Path, fake_docker: FakeDocker, model_dir: Path) -> None:
    """os.replace onto /dev/null would swap the device for a file, as root: refused first."""
    before = os.stat("/dev/null")
    invoke("bundle", "-o", "/dev/null", "--model-dir", str(model_dir))
    after = os.stat("/dev/null")
    assert stat.S_ISCHR(after.st_mode) and after.st_ino == before.st_ino


# -- the real process --------------------------------------------------------------------------


@pytest.mark.parametrize(
    "args, match",
    [
        (["verify", "{fifo}"], r"is a FIFO, not a bundle file"),
        (["verify", "{dir}"], r"is a directory, not a bundle file"),
        (["load", "{garbage}"], r"REFUSED: the docker CLI is not on PATH"),
        (["verify", "{garbage}"], r"bad tar header checksum at byte 0"),
    ],
    ids=["fifo-does-not-hang", "directory", "no-docker", "garbage"],
)
def test_the_installed_command_prints_one_line_and_exits_1(
    args: list[str], match: str, tmp_path: Path
) -> None:
    """Outside CliRunner: the real entry point, a real stderr, a timeout against hangs."""
    os.mkfifo(tmp_path / "pipe.tar")
    (tmp_path / "garbage.tar").write_bytes(os.urandom(4096))
    paths = {"fifo": tmp_path / "pipe.tar", "dir": tmp_path, "garbage": tmp_path / "garbage.tar"}
    argv = [a.format(**paths) for a in args]
    code = "from components.cli import main; main()"
    proc = subprocess.run(
        [sys.executable, "-c", code, "bundle", *argv], cwd=REPO, capture_output=True, text=True, timeout=60,
        env={**os.environ, "PATH": str(tmp_path)},
    )  # fmt: skip
    assert proc.returncode == 1, proc.stderr
    assert proc.stdout == ""
    lines = proc.stderr.splitlines()
    assert len(lines) == 1 and "Traceback" not in proc.stderr, proc.stderr
    assert re.search(match, lines[0]), lines[0]
