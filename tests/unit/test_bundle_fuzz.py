"""Property-based fuzzing of the bundle reader: whatever the bytes, `verify_bundle` either
accepts (and then the manifest, signed, and every part are intact) or raises BundleError
with a one-line message: never another exception, never a hang. `load` never hands docker
anything but the verified, decompressed image bytes.

Budget: TIZI_FUZZ_EXAMPLES examples per property (default 200), no per-example deadline
(the machine is shared), a 10 s alarm per call against hangs, no example database (nothing is
written to the work tree).
"""

from __future__ import annotations

import contextlib
import copy
import json
import os
import signal
import tempfile
from collections.abc import Iterator
from pathlib import Path
from types import FrameType
from typing import Any
from unittest import mock

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from components.ops.bundle import BundleError, load_bundle, verify_bundle
from components.ops.bundle import load as bundle_load
from tests.unit.test_bundle_hostile import (
    IMAGE_BYTES,
    IMAGE_ID,
    IMAGE_REF,
    PARTS,
    PUBLIC,
    VALID,
    bundle_bytes,
    header_offsets,
    manifest_for,
    member,
    rechecksum,
    tar_bytes,
    valid_members,
)

# Examples are shown as the mutation that made them (flip([(611, 1)])), except raw bytes.
pytestmark = pytest.mark.filterwarnings("ignore:Generating overly large repr")
FUZZ = settings(
    max_examples=int(os.environ.get("TIZI_FUZZ_EXAMPLES", "200")),
    deadline=None,
    database=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
HANG_SECONDS = 10
ORIGINAL = manifest_for()
MEMBERS = valid_members()
HEADERS = sorted(header_offsets(VALID).values())


class Hang(Exception):
    """A call outlived HANG_SECONDS."""


@contextlib.contextmanager
def no_hang(seconds: float = HANG_SECONDS) -> Iterator[None]:
    def alarm(signum: int, frame: FrameType | None) -> None:
        raise Hang(f"no answer within {seconds} s")

    previous = signal.signal(signal.SIGALRM, alarm)
    signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)


def verify_bytes(data: bytes) -> dict[str, Any] | None:
    """The manifest if accepted, None if refused with a proper one-line BundleError."""
    with tempfile.TemporaryDirectory() as d:
        path = Path(d) / "fuzz.tar"
        path.write_bytes(data)
        with no_hang():
            try:
                return verify_bundle(path, PUBLIC)
            except BundleError as exc:
                message = str(exc)
                assert message and "\n" not in message and len(message) < 1000, message
                return None


# -- mutations of the valid bundle -------------------------------------------------------------


def flip(positions: list[tuple[int, int]]) -> bytes:
    out = bytearray(VALID)
    for at, mask in positions:
        out[at % len(out)] ^= mask
    return bytes(out)


def header_surgery(edits: list[tuple[int, int, bytes]]) -> bytes:
    """Change header fields and fix the checksum, to get past it into the parser proper."""
    out = bytearray(VALID)
    for which, rel, new in edits:
        at = HEADERS[which % len(HEADERS)]
        rel %= 512
        if 148 <= rel < 156:
            continue
        new = new[: 512 - rel]
        out[at + rel : at + rel + len(new)] = new
        rechecksum(out, at)
    return bytes(out)


def splice(at: int, cut: int, insert: bytes) -> bytes:
    at %= len(VALID)
    return VALID[:at] + insert + VALID[at + cut :]


MUTATIONS = st.one_of(
    st.lists(st.tuples(st.integers(0, len(VALID) - 1), st.integers(1, 255)), min_size=1, max_size=8).map(
        flip
    ),
    st.integers(0, len(VALID) - 1).map(lambda n: VALID[:n]),
    st.binary(min_size=1, max_size=4096).map(lambda tail: VALID + tail),
    st.tuples(st.integers(0, len(VALID)), st.integers(0, 2048), st.binary(max_size=1024)).map(
        lambda a: splice(*a)
    ),
    st.lists(
        st.tuples(st.integers(0, 20), st.integers(0, 511), st.binary(min_size=1, max_size=16)),
        min_size=1,
        max_size=4,
    ).map(header_surgery),
)


@FUZZ
@given(MUTATIONS)
def test_a_mutated_bundle_is_accepted_intact_or_refused_in_one_line(data: bytes) -> None:
    """Accepted means the whole manifest is the signed original (a flipped bit in image id,
    spec or created breaks the signature) and so every part is byte for byte the original.
    What may change and still verify: header fields nobody reads (an mtime), and minisign's
    untrusted comment line, which its format leaves unsigned by design."""
    result = verify_bytes(data)
    assert result is None or result == ORIGINAL


@FUZZ
@given(st.binary(max_size=8192))
def test_random_bytes_are_refused_in_one_line(data: bytes) -> None:
    assert verify_bytes(data) is None


SIGNATURE_AT = MEMBERS[1][1]
SIGNED_LINES = SIGNATURE_AT.split(b"\n")


def with_signature(signature: bytes) -> bytes:
    return tar_bytes([MEMBERS[0], member("manifest.json.minisig", signature), *MEMBERS[2:]])


def flip_signature(positions: list[tuple[int, int]]) -> bytes:
    out = bytearray(SIGNATURE_AT)
    for at, mask in positions:
        out[at % len(out)] ^= mask
    return bytes(out)


@FUZZ
@given(
    st.one_of(
        st.lists(
            st.tuples(st.integers(0, len(SIGNATURE_AT) - 1), st.integers(1, 255)), min_size=1, max_size=4
        ).map(flip_signature),
        st.binary(max_size=600),
        st.lists(st.sampled_from(SIGNED_LINES), max_size=6).map(b"\n".join),
    )
)
def test_a_mutated_signature_is_refused_unless_only_its_untrusted_comment_changed(signature: bytes) -> None:
    """The signature member with bytes flipped, replaced or its lines shuffled: refused in
    one line, or accepted only when the signed lines (key id and signature, trusted
    comment, global signature) are untouched."""
    result = verify_bytes(with_signature(signature))
    if result is not None:
        lines = signature.splitlines()
        assert len(lines) == 4 and lines[1:] == SIGNED_LINES[1:4], signature
        assert result == ORIGINAL


@FUZZ
@given(st.permutations(range(len(MEMBERS))))
def test_reordered_members_are_refused_unless_in_order(order: list[int]) -> None:
    result = verify_bytes(tar_bytes([MEMBERS[i] for i in order]))
    if order == sorted(order):
        assert result == ORIGINAL
    else:
        assert result is None


@FUZZ
@given(st.lists(st.integers(0, len(MEMBERS) - 1), max_size=8))
def test_dropped_or_repeated_members_are_refused(picks: list[int]) -> None:
    result = verify_bytes(tar_bytes([MEMBERS[i] for i in picks]))
    assert (result == ORIGINAL) if picks == list(range(len(MEMBERS))) else result is None


def test_the_unmodified_bundle_is_accepted() -> None:
    assert verify_bytes(VALID) == ORIGINAL


# -- manifests of every shape ------------------------------------------------------------------

JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=20),
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=8), children, max_size=4)
    ),
    max_leaves=12,
)
PATHS = st.sampled_from(
    [
        ("format",), ("created",), ("images",), ("images", 0), ("images", 0, "ref"), ("images", 0, "id"),
        ("spec",), ("parts",), ("parts", 0), ("parts", 1, "path"), ("parts", 1, "kind"), ("parts", 2, "size"),
        ("parts", 0, "sha256"), ("parts", 0, "tar_size"), ("parts", 0, "tar_sha256"), ("extra",),
        ("parts", 1, "extra"),
    ]
)  # fmt: skip


def replaced(path: tuple[Any, ...], value: Any) -> dict[str, Any]:
    manifest = copy.deepcopy(ORIGINAL)
    target: Any = manifest
    for key in path[:-1]:
        target = target[key]
    target[path[-1]] = value
    return manifest


@FUZZ
@given(PATHS, JSON)
def test_any_manifest_value_is_accepted_as_written_or_refused_in_one_line(
    path: tuple[Any, ...], value: Any
) -> None:
    manifest = replaced(path, value)
    result = verify_bytes(bundle_bytes(manifest, PARTS))
    assert result is None or result == json.loads(json.dumps(manifest))


# -- load: what docker gets --------------------------------------------------------------------


@FUZZ
@given(MUTATIONS)
def test_load_feeds_docker_the_verified_image_or_nothing(data: bytes) -> None:
    fed: list[bytes] = []

    def docker_load(spooled: Any, docker_host: str | None) -> None:
        spooled.flush()
        spooled.seek(0)
        fed.append(spooled.read())

    with (
        tempfile.TemporaryDirectory() as d,
        mock.patch.object(bundle_load, "_docker_cli", return_value="docker"),
        mock.patch.object(bundle_load, "_docker_load", docker_load),
        mock.patch.object(bundle_load, "image_id", return_value=IMAGE_ID),
    ):
        path = Path(d) / "fuzz.tar"
        path.write_bytes(data)
        with no_hang():
            try:
                refs = load_bundle(path, PUBLIC)
            except BundleError as exc:
                assert "\n" not in str(exc)
                # the manifest is signed, so its image id is the engine's: a refusal is
                # always before docker load
                assert fed == []
            else:
                assert fed == [IMAGE_BYTES] and refs == [IMAGE_REF]
