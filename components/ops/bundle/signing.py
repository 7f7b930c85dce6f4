"""minisign keys and signatures: keygen, reading keys, signing manifest.json, checking it.

The signature is minisign's own format (Ed25519 over the BLAKE2b-512 of the manifest, plus a
signed trusted comment), so an operator can check it with Debian's stock tools, no tizi
needed (the package docstring has the commands). It is checked against the manifest's raw
bytes before they are parsed (`_check_signature`), and a signature by another key is named
as such, with both key ids as minisign prints them.

Keys are minisign key pairs: `tizi bundle keygen` writes them (the secret key file mode
0600, never printed), `minisign -G` keys work too. A secret key may be encrypted with a
passphrase in minisign's own scheme (scrypt, then XOR), read from $TIZI_BUNDLE_PASSPHRASE or
asked on the terminal, never taken from the command line (argv is visible to every user
through /proc).
"""

from __future__ import annotations

import base64
import os
from collections.abc import Callable
from pathlib import Path

from minisign import (  # type: ignore[import-untyped]  # py-minisign ships no type information
    Error as MinisignError,
)
from minisign import KeyPair, PublicKey, SecretKey, Signature

from components.ops.bundle.errors import BundleError, _reason
from components.ops.bundle.files import read_small_file
from components.ops.bundle.manifest import MANIFEST, SIGNATURE
from components.ops.bundle.tarfmt import _Reader

#: A minisign signature is four lines; its trusted comment is at most 8 KiB.
MAX_SIGNATURE = 16 << 10
#: A minisign key file is two lines of about 100 (public) or 220 (secret) characters.
MAX_KEY_FILE = 4096
#: The environment variable a secret key's passphrase is read from (never from argv).
PASSPHRASE_ENV = "TIZI_BUNDLE_PASSPHRASE"


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


def _public(public_key: PublicKey | Path) -> PublicKey:
    return read_public_key(public_key) if isinstance(public_key, Path) else public_key
