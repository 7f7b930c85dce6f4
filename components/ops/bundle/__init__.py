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

One module per job, each with its part of the story in its docstring:

    errors.py       BundleError: every refusal is one line
    files.py        opening regular files only, so no read blocks or never ends
    tarfmt.py       the strict tar reader, and the tar writer create uses
    manifest.py     the members' names, the manifest's schema and its strict checks
    signing.py      minisign keys (keygen, reading, passphrases) and the manifest's signature
    compression.py  zstd: the image part compressed, and decompressed capped and hashed
    verify.py       the one pass over a bundle: signature, then every part (verify_bundle)
    spool.py        the private, unnamed copy of image.tar that docker load reads
    load.py         verify-then-load from one read of the file (load_bundle)
    docker.py       the docker CLI calls
    models.py       the model files, from a directory or out of the images
    create.py       create_bundle: check, docker save, compress, sign, write, verify

What this package exports is what its callers use (the CLI, components/cli/bundle.py, and
the tests); a test that replaces a step patches the module that calls it.
"""

from __future__ import annotations

from components.ops.bundle.compression import ZSTD_LEVEL, compress_image
from components.ops.bundle.create import create_bundle
from components.ops.bundle.errors import BundleError
from components.ops.bundle.files import read_small_file
from components.ops.bundle.load import load_bundle
from components.ops.bundle.manifest import MAX_MANIFEST, MAX_PARTS
from components.ops.bundle.signing import (
    PASSPHRASE_ENV,
    generate_key_pair,
    public_key_id,
    read_public_key,
    read_secret_key,
    sign_manifest,
)
from components.ops.bundle.verify import verify_bundle

__all__ = [
    "MAX_MANIFEST",
    "MAX_PARTS",
    "PASSPHRASE_ENV",
    "ZSTD_LEVEL",
    "BundleError",
    "compress_image",
    "create_bundle",
    "generate_key_pair",
    "load_bundle",
    "public_key_id",
    "read_public_key",
    "read_secret_key",
    "read_small_file",
    "sign_manifest",
    "verify_bundle",
]
