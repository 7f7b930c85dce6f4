"""Signed, compressed bundles: what the signature refuses, keys, stock-tool interoperability.

Every refusal runs twice, through `tizi bundle verify` and `tizi bundle load`, and each
asserts exit 1, one line on stderr, and that the fake docker was never called (nothing
loaded). The round trip goes keygen -> create (two images, an encrypted key) -> verify ->
load, all through the command line. Debian's `minisign` checks tizi's signatures and keys
both ways: tizi's signature verifies with `minisign -V`, a `minisign -G` key signs bundles
tizi accepts, and minisign signs with tizi's encrypted secret key. The bundle builders, the
test key and the fake docker are those of tests/unit/test_bundle_hostile.py.
"""

from __future__ import annotations

import base64
import hashlib
import importlib
import io
import json
import os
import shutil
import stat
import subprocess
import tarfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pytest
import zstandard
from minisign import KeyPair, PublicKey, SecretKey  # type: ignore[import-untyped]

import tests.unit.test_bundle_hostile as hostile
from components.ops import bundle as core
from components.ops.bundle import BundleError, load_bundle, verify_bundle
from components.ops.bundle import create as bundle_create
from tests.conftest import require
from tests.unit.test_bundle_hostile import (
    IMAGE_BYTES,
    IMAGE_ID,
    IMAGE_REF,
    IMAGE_ZST,
    KEYS,
    MODEL_BIN,
    MODEL_JSON,
    PARTS,
    PUBLIC,
    VALID,
    FakeDocker,
    assert_one_line_refusal,
    bundle_bytes,
    head,
    header_offsets,
    image_data_offset,
    in_place_flip,
    invoke,
    manifest_for,
    member,
    packed,
    part_entry,
    raw_manifest,
    sha,
    signature_for,
    tar_bytes,
    valid_members,
)

#: the module, not the click group `components.cli.bundle` that components.cli exports
cli = importlib.import_module("components.cli.bundle")

# the fixtures of the hostile suite, used here by name
bundle_keys = hostile.bundle_keys
spool_parent = hostile.spool_parent
fake_docker = hostile.fake_docker
no_leaks = hostile.no_leaks
model_dir = hostile.model_dir

OTHER = KeyPair.generate()
RAW = raw_manifest(manifest_for())
MODEL_REF = "tizi/model-smollm2:0.1.0"
MODEL_ID = "sha256:" + "6d" * 32
MODEL_LABELS = {"org.tizi.model.file": "model.bin", "org.tizi.model.sha256": sha(MODEL_BIN)}


def key_id(key: PublicKey) -> str:
    return core.public_key_id(key)


# -- bundles the signature must refuse -------------------------------------------------------


def forged_key_id() -> bytes:
    """Signed by OTHER, with our key's id written into the signature: only the Ed25519
    check can tell, and it does."""
    lines = signature_for(RAW, OTHER).split(b"\n")
    ours = base64.b64decode(bytes(PUBLIC.to_base64()))[2:10]
    line = bytearray(base64.b64decode(lines[1]))
    line[2:10] = ours
    lines[1] = base64.b64encode(bytes(line))
    return b"\n".join(lines)


def with_head(manifest_raw: bytes, signature: bytes, parts: list[tuple[str, bytes]] = PARTS) -> bytes:
    return tar_bytes(
        [
            member("manifest.json", manifest_raw),
            member("manifest.json.minisig", signature),
            *(member(p, d) for p, d in parts),
        ]
    )


def retargeted_manifest() -> bytes:
    """The attack a digest alone cannot stop: a new image, the manifest's digests updated
    to match, the old signature kept."""
    evil = packed(b"an image nobody signed\n" * 200)
    parts = [("image.tar.zst", evil), *PARTS[1:]]
    return with_head(raw_manifest(manifest_for(parts)), signature_for(RAW), parts)


def changed_trusted_comment() -> bytes:
    lines = signature_for(RAW).split(b"\n")
    lines[2] = lines[2].replace(b"file:manifest.json", b"file:manifest.jsoN")
    return with_head(RAW, b"\n".join(lines))


def changed_untrusted_comment() -> bytes:
    lines = signature_for(RAW).split(b"\n")
    lines[0] = b"untrusted comment: anything at all"
    return with_head(RAW, b"\n".join(lines))


def another_bundles_head() -> bytes:
    """manifest.json and its (valid) signature from another bundle, then this one's parts."""
    other_parts = [("image.tar.zst", packed(IMAGE_BYTES[::-1])), *PARTS[1:]]  # same size, other bytes
    other_raw = raw_manifest(manifest_for(other_parts))
    return tar_bytes([*head(other_raw), *(member(p, d) for p, d in PARTS)])


def signed_with_image(data: bytes, **entry: object) -> bytes:
    """A bundle whose signer put `data` as image.tar.zst, the manifest entry adjusted."""
    image = {**part_entry("image.tar.zst", data), **entry}
    manifest = manifest_for(parts=[image, *manifest_for()["parts"][1:]])
    return tar_bytes(valid_members(manifest, [("image.tar.zst", data), *PARTS[1:]]))


def model_data_offset(data: bytes) -> int:
    with tarfile.open(fileobj=io.BytesIO(data), mode="r:") as tar:
        return tar.getmember("model/model.bin").offset_data


@dataclass(frozen=True)
class Refused:
    id: str
    data: Callable[[], bytes]
    match: str


SIG = "manifest.json.minisig"
REFUSED = [
    Refused(
        "unsigned",
        lambda: tar_bytes([member("manifest.json", RAW), *(member(p, d) for p, d in PARTS)]),
        r"unsigned bundle: manifest\.json is followed by 'image\.tar\.zst', not manifest\.json\.minisig",
    ),
    Refused(
        "unsigned-format-1-bundle",
        lambda: tar_bytes(
            [
                member("manifest.json", raw_manifest({"format": "tizi-bundle/1"})),
                member("image.tar", IMAGE_BYTES),
            ]
        ),
        r"unsigned bundle: manifest\.json is followed by 'image\.tar', not manifest\.json\.minisig",
    ),
    Refused(
        "manifest-only",
        lambda: tar_bytes([member("manifest.json", RAW)]),
        r"unsigned bundle: manifest\.json is followed by the end of the archive",
    ),
    Refused(
        "wrong-key",
        lambda: bundle_bytes(keys=OTHER),
        rf"signed by another key: key {key_id(OTHER.public_key)}, the public key given is {key_id(PUBLIC)}",
    ),
    Refused(
        "wrong-key-with-our-key-id",
        lambda: with_head(RAW, forged_key_id()),
        r"bad signature: manifest\.json was changed after signing",
    ),
    Refused(
        "tampered-manifest-byte",
        lambda: in_place_flip(VALID, 512 + RAW.index(b"2026")),
        r"bad signature: manifest\.json was changed after signing, or the signature is another manifest's",
    ),
    Refused(
        "tampered-manifest-image-ref",
        lambda: with_head(
            raw_manifest(manifest_for(images=[{"ref": "evil/inference:0.1.0", "id": IMAGE_ID}])),
            signature_for(RAW),
        ),
        r"bad signature",
    ),
    Refused("tampered-manifest-digests", retargeted_manifest, r"bad signature"),
    Refused(
        "signature-over-another-manifest",
        lambda: with_head(RAW, signature_for(raw_manifest(manifest_for(created="2026-02-02T00:00:00Z")))),
        r"bad signature",
    ),
    Refused(
        "signed-head-of-another-bundle",
        another_bundles_head,
        r"image\.tar\.zst: sha256 mismatch: the bundle is corrupted",
    ),
    Refused("trusted-comment-changed", changed_trusted_comment, r"bad signature"),
    Refused(
        "tampered-image-part",
        lambda: in_place_flip(VALID, image_data_offset(VALID) + 2000),
        r"image\.tar\.zst: sha256 mismatch: the bundle is corrupted",
    ),
    Refused(
        "tampered-model-part",
        lambda: in_place_flip(VALID, model_data_offset(VALID) + 7),
        r"model/model\.bin: sha256 mismatch: the bundle is corrupted",
    ),
    Refused(
        "signature-garbage",
        lambda: with_head(RAW, b"hello\n"),
        r"manifest\.json\.minisig is not a minisign signature",
    ),
    Refused(
        "signature-empty", lambda: with_head(RAW, b""), r"manifest\.json\.minisig is not a minisign signature"
    ),
    Refused(
        "signature-over-cap",
        lambda: with_head(RAW, b"x" * (16 * 1024 + 1)),
        r"manifest\.json\.minisig is 16385 bytes, over the 16384-byte cap",
    ),
    Refused(
        "signature-symlink",
        lambda: tar_bytes(
            [
                member("manifest.json", RAW),
                member(SIG, kind=tarfile.SYMTYPE, linkname="/etc/shadow"),
                *(member(p, d) for p, d in PARTS),
            ]
        ),
        r"member 'manifest\.json\.minisig' is a symbolic link",
    ),
    Refused(
        "signature-first",
        lambda: tar_bytes([*reversed(valid_members()[:2]), *valid_members()[2:]]),
        r"the first member is 'manifest\.json\.minisig', not manifest\.json",
    ),
    Refused(
        "truncated-in-signature",
        lambda: VALID[: header_offsets(VALID)[SIG] + 600],
        r"the file ends inside manifest\.json\.minisig .*: the bundle is truncated",
    ),
    Refused(
        "truncated-after-signature",
        lambda: VALID[: header_offsets(VALID)["image.tar.zst"]],
        r"lists \d+ bytes of parts, the file holds \d+: truncated",
    ),
    Refused(
        "truncated-in-image",
        lambda: VALID[: image_data_offset(VALID) + len(IMAGE_ZST) // 2],
        r"truncated",
    ),
    Refused(
        "truncated-in-model",
        lambda: VALID[: model_data_offset(VALID) + 100],
        r"the file ends inside model/model\.bin .*: the bundle is truncated",
    ),
    Refused(
        "truncated-before-end-blocks",
        lambda: VALID[: header_offsets(VALID)["model/model.json"] + 512 + 512 * (-(-len(MODEL_JSON) // 512))],
        r"without the end-of-archive blocks: the bundle is truncated",
    ),
    Refused("trailing-data", lambda: VALID + b"#!/bin/sh\nrm -rf /\n", r"data after the end of the archive"),
    Refused(
        "trailing-signed-bundle",
        lambda: VALID[:-1024] + bundle_bytes(keys=KEYS),
        r"data after the end of the archive|trailing bytes|after the last part",
    ),
    Refused(
        "signed-image-not-zstd",
        lambda: signed_with_image(IMAGE_BYTES),
        r"image\.tar\.zst: not valid zstd data",
    ),
    Refused(
        "signed-zstd-then-garbage",
        lambda: signed_with_image(
            IMAGE_ZST + b"garbage", tar_size=len(IMAGE_BYTES), tar_sha256=sha(IMAGE_BYTES)
        ),
        r"image\.tar\.zst: not valid zstd data",
    ),
    Refused(
        "signed-decompression-bomb",
        lambda: signed_with_image(packed(bytes(64 << 20)), tar_size=1000, tar_sha256=sha(bytes(1000))),
        r"image\.tar\.zst: decompresses to more than the manifest's tar_size of 1000 bytes",
    ),
    Refused(
        "signed-tar-size-short",
        lambda: signed_with_image(IMAGE_ZST, tar_size=len(IMAGE_BYTES) + 1),
        rf"decompresses to {len(IMAGE_BYTES)} bytes, the manifest's tar_size is {len(IMAGE_BYTES) + 1}",
    ),
    Refused(
        "signed-tar-sha256-wrong",
        lambda: signed_with_image(IMAGE_ZST, tar_sha256="0" * 64),
        r"image\.tar\.zst: the decompressed image\.tar does not match tar_sha256",
    ),
]


def test_the_untrusted_comment_is_not_signed_by_design(tmp_path: Path) -> None:
    """minisign's first line is a free note anyone may change; what is signed is unchanged."""
    path = tmp_path / "b.tar"
    path.write_bytes(changed_untrusted_comment())
    assert verify_bundle(path, PUBLIC) == manifest_for()


@pytest.mark.parametrize("case", REFUSED, ids=[c.id for c in REFUSED])
def test_verify_refuses(
    case: Refused, tmp_path: Path, bundle_keys: tuple[Path, Path], no_leaks: None
) -> None:
    path = tmp_path / "bundle.tar"
    path.write_bytes(case.data())
    with pytest.raises(BundleError, match=case.match):
        verify_bundle(path, PUBLIC)
    _, public = bundle_keys
    result = invoke("bundle", "verify", "--pubkey", str(public), str(path))
    assert_one_line_refusal(result, r"^Error: REFUSED: .*" + case.match)


@pytest.mark.parametrize("case", REFUSED, ids=[c.id for c in REFUSED])
def test_load_refuses_and_loads_nothing(
    case: Refused, tmp_path: Path, bundle_keys: tuple[Path, Path], fake_docker: FakeDocker, no_leaks: None
) -> None:
    path = tmp_path / "bundle.tar"
    path.write_bytes(case.data())
    _, public = bundle_keys
    result = invoke("bundle", "load", "--pubkey", str(public), str(path))
    assert_one_line_refusal(result, r"^Error: REFUSED: .*" + case.match)
    assert fake_docker.calls() == []
    assert fake_docker.loaded() is None


# -- the public key given ---------------------------------------------------------------------


def public_key_file(tmp: Path, data: bytes) -> Path:
    path = tmp / "site.pub"
    path.write_bytes(data)
    return path


PUBKEY_CASES = [
    ("missing", lambda t: t / "nope.pub", r"nope\.pub: No such file or directory"),
    ("directory", lambda t: t, r"is a directory, not a public key file"),
    ("fifo", lambda t: os.mkfifo(t / "p.pub") or t / "p.pub", r"p\.pub is a FIFO, not a public key file"),
    ("dev-zero", lambda t: Path("/dev/zero"), r"/dev/zero is a character device, not a public key file"),
    ("garbage", lambda t: public_key_file(t, b"hello\n"), r"site\.pub: not a minisign public key file$"),
    (
        "the-secret-key",
        lambda t: public_key_file(t, bytes(KEYS.secret_key) + b"\n"),
        r"site\.pub: not a minisign public key file$",
    ),
    (
        "over-cap",
        lambda t: public_key_file(t, b"k" * 5000),
        r"over 4096 bytes, too large for a public key file",
    ),
]


@pytest.mark.parametrize("command", ["verify", "load"])
@pytest.mark.parametrize("case", PUBKEY_CASES, ids=[c[0] for c in PUBKEY_CASES])
def test_a_bad_public_key_refuses_before_reading_the_bundle(
    command: str, case: tuple[str, Callable[[Path], Path], str], tmp_path: Path, fake_docker: FakeDocker
) -> None:
    bundle = tmp_path / "good.tar"
    bundle.write_bytes(VALID)
    keydir = tmp_path / "k"
    keydir.mkdir()
    line = assert_one_line_refusal(
        invoke("bundle", command, "--pubkey", str(case[1](keydir)), str(bundle)),
        r"^Error: REFUSED: .*" + case[2],
    )
    assert bytes(KEYS.secret_key.to_base64()).decode() not in line
    assert fake_docker.calls() == []


@pytest.mark.parametrize("command", ["verify", "load"])
def test_no_public_key_is_a_refusal_not_an_unchecked_bundle(
    command: str, tmp_path: Path, fake_docker: FakeDocker, monkeypatch: pytest.MonkeyPatch
) -> None:
    """There is no unsigned mode to fall back to when the key is forgotten."""
    monkeypatch.delenv("TIZI_BUNDLE_PUBKEY")
    bundle = tmp_path / "good.tar"
    bundle.write_bytes(VALID)
    assert_one_line_refusal(
        invoke("bundle", command, str(bundle)),
        r"^Error: REFUSED: no public key: pass --pubkey KEY\.pub \(or set TIZI_BUNDLE_PUBKEY\); "
        r"only signed bundles are accepted$",
    )
    assert fake_docker.calls() == []


# -- keys ---------------------------------------------------------------------------------------


def keygen_dir(tmp: Path) -> Path:
    """A folder of its own (the autouse fixture keeps the test key pair in tmp/keys)."""
    path = tmp / "made"
    path.mkdir(exist_ok=True)
    return path


def test_keygen_writes_a_0600_secret_key_and_never_prints_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("TIZI_BUNDLE_PASSPHRASE", "correct horse")
    secret, public = keygen_dir(tmp_path) / "site.key", keygen_dir(tmp_path) / "site.pub"
    old = os.umask(0)  # the mode must not depend on the caller's umask
    try:
        result = invoke("bundle", "keygen", "-s", str(secret), "-p", str(public))
    finally:
        os.umask(old)
    assert result.exit_code == 0, result.output
    assert stat.S_IMODE(secret.stat().st_mode) == 0o600
    assert stat.S_IMODE(public.stat().st_mode) == 0o644
    key = SecretKey.from_file(secret)
    assert key.is_encrypted()
    encoded = secret.read_bytes().splitlines()[1].decode()
    assert encoded not in result.output and "correct horse" not in result.output
    key.decrypt("correct horse")
    pub = PublicKey.from_file(public)
    assert key.get_public_key() == pub
    assert (
        result.output
        == f"key {key_id(pub)}: secret key {secret} (encrypted with the passphrase, mode 0600), "
        + (f"public key {public}\n")
    )
    assert public.read_text().startswith(f"untrusted comment: minisign public key {key_id(pub)}\n")


def test_keygen_asks_on_a_terminal_and_confirms(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("TIZI_BUNDLE_PASSPHRASE", raising=False)
    monkeypatch.setattr(cli, "_stdin_is_terminal", lambda: True)
    secret, public = keygen_dir(tmp_path) / "site.key", keygen_dir(tmp_path) / "site.pub"
    from click.testing import CliRunner

    from components.cli import main

    result = CliRunner().invoke(
        main, ["bundle", "keygen", "-s", str(secret), "-p", str(public)], input="s3cret\ns3cret\n"
    )
    assert result.exit_code == 0, result.output
    assert "s3cret" not in result.output  # hidden input: not echoed
    assert "Passphrase" in result.stderr and "Passphrase" not in result.stdout
    key = SecretKey.from_file(secret)
    key.decrypt("s3cret")
    assert key.get_public_key() == PublicKey.from_file(public)


def test_keygen_without_a_passphrase_source_writes_nothing(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("TIZI_BUNDLE_PASSPHRASE", raising=False)
    secret, public = keygen_dir(tmp_path) / "site.key", keygen_dir(tmp_path) / "site.pub"
    assert_one_line_refusal(
        invoke("bundle", "keygen", "-s", str(secret), "-p", str(public)),
        r"the secret key needs a passphrase: set TIZI_BUNDLE_PASSPHRASE or run in a terminal",
    )
    assert list(keygen_dir(tmp_path).iterdir()) == []


@pytest.mark.parametrize("existing", ["secret", "public", "both-the-same-file"])
def test_keygen_never_overwrites_a_key(existing: str, tmp_path: Path) -> None:
    secret, public = keygen_dir(tmp_path) / "site.key", keygen_dir(tmp_path) / "site.pub"
    if existing == "both-the-same-file":
        public = secret
        match = r"the secret and the public key need two different files"
    else:
        (secret if existing == "secret" else public).write_bytes(b"precious\n")
        match = (
            rf"site\.{'key' if existing == 'secret' else 'pub'} already exists: refusing to overwrite a key"
        )
    before = {p.name: p.read_bytes() for p in keygen_dir(tmp_path).iterdir()}
    assert_one_line_refusal(
        invoke("bundle", "keygen", "--no-passphrase", "-s", str(secret), "-p", str(public)), match
    )
    assert {p.name: p.read_bytes() for p in keygen_dir(tmp_path).iterdir()} == before


@pytest.mark.parametrize("command", ["keygen", "create"])
def test_a_passphrase_is_never_taken_from_the_command_line(command: str) -> None:
    """argv is world-readable in /proc: there is no option that takes a passphrase."""
    result = invoke("bundle", command, "--passphrase", "hunter2")
    assert result.exit_code == 2 and "No such option '--passphrase'" in result.output


# -- the round trip -----------------------------------------------------------------------------


@pytest.fixture
def two_images(fake_docker: FakeDocker, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """The engine holds the server image and a model image (labelled as
    scripts/build-model-image.sh labels it) whose /model holds MODEL_BIN and MODEL_JSON."""
    model = tmp_path / "image-model"
    model.mkdir()
    (model / "model.bin").write_bytes(MODEL_BIN)
    (model / "model.json").write_bytes(MODEL_JSON)
    monkeypatch.setenv("FAKE_DOCKER_IDS", json.dumps({IMAGE_REF: IMAGE_ID, MODEL_REF: MODEL_ID}))
    monkeypatch.setenv("FAKE_DOCKER_LABELS", json.dumps({MODEL_REF: MODEL_LABELS}))
    monkeypatch.setenv("FAKE_DOCKER_MODEL_DIR", str(model))
    return model


def test_round_trip_keygen_create_verify_load(
    tmp_path: Path, two_images: Path, fake_docker: FakeDocker, monkeypatch: pytest.MonkeyPatch, no_leaks: None
) -> None:
    monkeypatch.setenv("TIZI_BUNDLE_PASSPHRASE", "correct horse")
    monkeypatch.delenv("TIZI_BUNDLE_PUBKEY")
    monkeypatch.delenv("TIZI_BUNDLE_SECRET_KEY")
    secret, public = keygen_dir(tmp_path) / "site.key", keygen_dir(tmp_path) / "site.pub"
    assert invoke("bundle", "keygen", "-s", str(secret), "-p", str(public)).exit_code == 0
    out = tmp_path / "site.tar"

    created = invoke(
        "bundle", "create", "--secret-key", str(secret), "-o", str(out),
        "--image", IMAGE_REF, "--image", MODEL_REF,
    )  # fmt: skip
    assert created.exit_code == 0, created.output
    key = PublicKey.from_file(public)
    assert created.output.splitlines()[0].endswith(f"signed by key {key_id(key)}")
    assert [c[0] for c in fake_docker.calls()] == [
        "image",
        "image",
        "save",
        "image",
        "image",
        "create",
        "cp",
        "rm",
    ]
    assert ["save", IMAGE_REF, MODEL_REF] in fake_docker.calls()  # one save: shared layers once

    manifest = verify_bundle(out, key)
    assert manifest["images"] == [{"ref": IMAGE_REF, "id": IMAGE_ID}, {"ref": MODEL_REF, "id": MODEL_ID}]
    assert [(p["path"], p["sha256"]) for p in manifest["parts"][1:]] == [
        ("model/model.bin", sha(MODEL_BIN)),
        ("model/model.json", sha(MODEL_JSON)),
    ]  # copied out of the model image's /model, stored as they are
    with tarfile.open(out) as tar:
        assert tar.getnames() == ["manifest.json", "manifest.json.minisig", "image.tar.zst", *[
            p["path"] for p in manifest["parts"][1:]
        ]]  # fmt: skip
        stored = tar.extractfile("image.tar.zst")
        assert stored is not None
        assert zstandard.ZstdDecompressor().decompress(stored.read()) == IMAGE_BYTES

    verified = invoke("bundle", "verify", "--pubkey", str(public), str(out))
    assert verified.exit_code == 0, verified.output
    assert verified.output.startswith(f"OK {out}: {IMAGE_REF}, {MODEL_REF} (3 parts verified), signed by key")

    (fake_docker.state / "calls.jsonl").unlink()
    loaded = invoke("bundle", "load", "--pubkey", str(public), str(out), "--docker-host", "ssh://edge-site")
    assert loaded.exit_code == 0, loaded.output
    assert loaded.output == f"loaded {IMAGE_REF}, {MODEL_REF} into ssh://edge-site\n"
    assert fake_docker.loaded() == IMAGE_BYTES  # decompressed, the bytes docker save gave
    assert fake_docker.calls() == [
        ["load", "--quiet"],
        ["image", "inspect", "--format", "{{.Id}}", IMAGE_REF],
        ["image", "inspect", "--format", "{{.Id}}", MODEL_REF],
    ]

    # the same bundle, another site's key: refused, nothing loaded
    other = tmp_path / "other.pub"
    other.write_bytes(bytes(OTHER.public_key) + b"\n")
    (fake_docker.state / "calls.jsonl").unlink()
    (fake_docker.state / "loaded.bin").unlink()
    assert_one_line_refusal(
        invoke("bundle", "load", "--pubkey", str(other), str(out)), r"signed by another key"
    )
    assert fake_docker.calls() == [] and fake_docker.loaded() is None


def test_no_model_files_leaves_them_out(tmp_path: Path, two_images: Path, fake_docker: FakeDocker) -> None:
    out = tmp_path / "site.tar"
    result = invoke("bundle", "-o", str(out), "--image", IMAGE_REF, "--image", MODEL_REF, "--no-model-files")
    assert result.exit_code == 0, result.output
    assert [p["path"] for p in verify_bundle(out, PUBLIC)["parts"]] == ["image.tar.zst"]
    assert not any(c[0] in ("create", "cp") for c in fake_docker.calls())


def test_an_image_without_model_files_contributes_none(
    tmp_path: Path, fake_docker: FakeDocker, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The llama.cpp server image says `org.tizi.model: none: ...`; an unlabelled image says
    nothing: no model parts, no docker create."""
    monkeypatch.setenv(
        "FAKE_DOCKER_LABELS", json.dumps({IMAGE_REF: {"org.tizi.model": "none: mount a GGUF"}})
    )
    out = tmp_path / "site.tar"
    result = invoke("bundle", "-o", str(out), "--image", IMAGE_REF, "--image", "tizi/unlabelled:1")
    assert result.exit_code == 0, result.output
    assert [p["path"] for p in verify_bundle(out, PUBLIC)["parts"]] == ["image.tar.zst"]
    assert not any(c[0] == "create" for c in fake_docker.calls())


def test_an_image_that_changes_during_save_is_refused(
    tmp_path: Path, fake_docker: FakeDocker, model_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The id recorded is the id before save; a retag during save would sign the wrong id."""
    monkeypatch.setattr(bundle_create, "image_id", lambda ref, docker_host=None: "sha256:" + "0" * 64)
    assert_one_line_refusal(
        invoke("bundle", "-o", str(tmp_path / "x.tar"), "--model-dir", str(model_dir)),
        r"tizi/inference-service:0\.1\.0 changed while it was saved .*: try again",
    )
    assert not (tmp_path / "x.tar").exists()


# -- compression ---------------------------------------------------------------------------------


def test_compress_image_round_trip_and_stock_zstd(tmp_path: Path) -> None:
    """What create stores decompresses to the bytes docker saved, with libzstd and with the
    stock `zstd` tool (its frame carries the size and a checksum: `zstd -t` checks it)."""
    layer = b"".join(hashlib.sha256(b"%d" % i).digest() for i in range(4096))  # incompressible
    data = layer + b"\0" * (1 << 20) + b"config " * 50_000  # and compressible stretches
    src, dest = tmp_path / "image.tar", tmp_path / "image.tar.zst"
    src.write_bytes(data)
    assert core.compress_image(src, dest) == (len(data), sha(data))
    packed_bytes = dest.read_bytes()
    assert zstandard.ZstdDecompressor().decompress(packed_bytes) == data
    assert len(packed_bytes) < len(layer) + (64 << 10)  # the zeros and repeats are nearly free
    assert zstandard.get_frame_parameters(packed_bytes).content_size == len(data)
    zstd = shutil.which("zstd")
    require(zstd is not None, "the zstd command is not installed (apt-get install zstd)")
    assert subprocess.run([str(zstd), "-tq", str(dest)], capture_output=True).returncode == 0
    assert subprocess.run([str(zstd), "-dc", str(dest)], capture_output=True).stdout == data


def test_a_higher_level_is_smaller_and_still_reads(
    tmp_path: Path, fake_docker: FakeDocker, model_dir: Path
) -> None:
    image = b"FROM scratch\n" * 40_000 + b"".join(hashlib.sha256(b"%d" % i).digest() for i in range(400))
    (tmp_path / "saved-image.tar").write_bytes(image)
    sizes = {}
    for level in ("1", "19"):
        out = tmp_path / f"l{level}.tar"
        result = invoke("bundle", "-o", str(out), "--level", level, "--model-dir", str(model_dir))
        assert result.exit_code == 0, result.output
        part = verify_bundle(out, PUBLIC)["parts"][0]
        assert part["tar_sha256"] == sha(image)
        sizes[level] = part["size"]
    assert sizes["19"] <= sizes["1"] < len(image) // 4


# -- stock minisign --------------------------------------------------------------------------------


def minisign() -> str:
    found = shutil.which("minisign")
    require(found is not None, "Debian's minisign is not installed (apt-get install minisign)")
    return str(found)


def run(*args: str, stdin: str = "") -> subprocess.CompletedProcess[str]:
    return subprocess.run(list(args), capture_output=True, text=True, input=stdin, timeout=60)


def extract_head(bundle: Path, dest: Path) -> None:
    """What an operator does with tar: the two members minisign needs, nothing else."""
    with tarfile.open(bundle) as tar:
        for name in ("manifest.json", "manifest.json.minisig"):
            src = tar.extractfile(name)
            assert src is not None
            (dest / name).write_bytes(src.read())


def test_stock_minisign_verifies_a_tizi_signature(
    tmp_path: Path, fake_docker: FakeDocker, model_dir: Path, bundle_keys: tuple[Path, Path]
) -> None:
    tool = minisign()
    out = tmp_path / "site.tar"
    assert invoke("bundle", "-o", str(out), "--model-dir", str(model_dir)).exit_code == 0
    _, public = bundle_keys
    extract_head(out, tmp_path)
    checked = run(tool, "-V", "-p", str(public), "-m", str(tmp_path / "manifest.json"))
    assert checked.returncode == 0, checked.stderr
    assert "Signature and comment signature verified" in checked.stdout
    assert "\tfile:manifest.json\thashed" in checked.stdout  # the trusted comment

    other = tmp_path / "other.pub"
    other.write_bytes(bytes(OTHER.public_key) + b"\n")
    assert run(tool, "-V", "-p", str(other), "-m", str(tmp_path / "manifest.json")).returncode != 0
    manifest = tmp_path / "manifest.json"
    manifest.write_bytes(manifest.read_bytes().replace(b"inference-service", b"inference-servicf"))
    assert run(tool, "-V", "-p", str(public), "-m", str(manifest)).returncode != 0


def test_a_minisign_key_signs_bundles_tizi_accepts(
    tmp_path: Path, fake_docker: FakeDocker, model_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    tool = minisign()
    secret, public = tmp_path / "m.key", tmp_path / "m.pub"
    made = run(tool, "-G", "-W", "-s", str(secret), "-p", str(public))
    assert made.returncode == 0, made.stderr
    out = tmp_path / "site.tar"
    result = invoke("bundle", "-o", str(out), "--secret-key", str(secret), "--model-dir", str(model_dir))
    assert result.exit_code == 0, result.output
    assert verify_bundle(out, public)["images"] == [{"ref": IMAGE_REF, "id": IMAGE_ID}]
    minisign_id = public.read_text().splitlines()[0].rsplit(" ", 1)[1]
    assert result.output.splitlines()[0].endswith(f"signed by key {minisign_id}")


def test_minisign_signs_with_a_tizi_encrypted_key(tmp_path: Path) -> None:
    """tizi's passphrase scheme is minisign's own: minisign decrypts a tizi key."""
    tool = minisign()
    secret, public = keygen_dir(tmp_path) / "site.key", keygen_dir(tmp_path) / "site.pub"
    core.generate_key_pair(secret, public, "correct horse")
    note = tmp_path / "note.txt"
    note.write_text("signed by minisign with a tizi key\n")
    signed = run(tool, "-S", "-s", str(secret), "-m", str(note), stdin="correct horse\n")
    assert signed.returncode == 0, signed.stderr
    assert run(tool, "-V", "-p", str(public), "-m", str(note)).returncode == 0
    wrong = run(tool, "-S", "-s", str(secret), "-m", str(note), "-x", str(tmp_path / "w.sig"), stdin="nope\n")
    assert wrong.returncode != 0


def test_load_bundle_core_refuses_unsigned_with_nothing_loaded(
    tmp_path: Path, fake_docker: FakeDocker, no_leaks: None
) -> None:
    """The core API too: no key, no load (the CLI is not the only guard)."""
    path = tmp_path / "unsigned.tar"
    path.write_bytes(tar_bytes([member("manifest.json", RAW), *(member(p, d) for p, d in PARTS)]))
    with pytest.raises(BundleError, match=r"unsigned bundle"):
        load_bundle(path, PUBLIC)
    assert fake_docker.calls() == []


# -- the images a site needs ---------------------------------------------------------------------


@pytest.mark.parametrize(
    "stack, refs",
    [
        ("llm-local", ["tizi/llm-server:0.1.0", "tizi/model-smollm2:0.1.0", "tizi/gateway:0.1.0"]),
        ("local", ["tizi/inference-service:0.1.0", "tizi/gateway:0.1.0"]),
    ],
)
def test_images_lists_what_a_stack_runs(stack: str, refs: list[str]) -> None:
    """The server image, the `oci:` model image, the gateway: what create's --image takes."""
    result = invoke("bundle", "images", str(hostile.REPO / "stacks" / f"Pulumi.{stack}.yaml"))
    assert result.exit_code == 0, result.output
    assert result.stdout.splitlines() == refs


@pytest.mark.parametrize(
    "text, match",
    [
        (None, r"nope\.yaml: cannot read stack file: No such file or directory"),
        ("fifo", r"not a regular file"),
        ("config:\n  tizi:ministry: 7\n", r"stack\.yaml: tizi:ministry: 7 is invalid: .*; tizi:environment"),
        ("config: [", r"stack\.yaml: cannot read stack file"),
    ],
    ids=["missing", "fifo", "invalid-stack", "not-yaml"],
)
def test_images_of_an_unusable_stack_is_one_line(text: str | None, match: str, tmp_path: Path) -> None:
    path = tmp_path / ("nope.yaml" if text is None else "stack.yaml")
    if text == "fifo":
        os.mkfifo(path)
    elif text is not None:
        path.write_text(text)
    assert_one_line_refusal(invoke("bundle", "images", str(path)), match)
