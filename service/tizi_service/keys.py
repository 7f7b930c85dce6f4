"""API keys read from files, re-read when they change, several valid at once.

Every non-empty regular file in the directory (hidden names excepted, symlinks followed, as
Kubernetes secret volumes use `..data` symlinks) holds one key. Rotation without downtime:
add the new key file, move clients over, delete the old file; no restart. Only SHA-256
digests of keys are kept in memory, and the file name serves as the key's id in logs.

Managed platforms that cannot mount files (Koyeb) inject a platform secret as the
environment variable ``TIZI_API_KEYS`` (comma-separated); those keys are valid too and
are logged as ``env-<n>``. Docker and Kubernetes targets never use it.

The LLM image (service/llm) runs this very module: scripts/build-llm-image.sh copies it in,
so both payloads accept keys by one set of rules.
"""

from __future__ import annotations

import hashlib
import hmac
import os
import threading
import time
from collections.abc import Callable
from pathlib import Path

DEFAULT_KEYS_DIR = "/run/secrets/tizi"
KEYS_ENV = "TIZI_API_KEYS"


def _env_keys(environ: dict[str, str] | os._Environ[str] | None = None) -> dict[bytes, str]:
    raw = (os.environ if environ is None else environ).get(KEYS_ENV, "")
    keys = [k.strip() for k in raw.replace("\n", ",").split(",") if k.strip()]
    return {_digest(key): f"env-{index}" for index, key in enumerate(keys)}


def _digest(key: str) -> bytes:
    return hashlib.sha256(key.encode("utf-8")).digest()


class KeyStore:
    """Checks bearer keys against the key files, rescanning at most every `recheck` seconds."""

    def __init__(
        self,
        directory: str | os.PathLike[str],
        recheck: float = 1.0,
        environ: dict[str, str] | None = None,
        on_reload: Callable[[list[str]], None] | None = None,
    ) -> None:
        self.directory = Path(directory)
        self._env_keys = _env_keys(environ)
        self.recheck = recheck
        #: told the key ids whenever a rescan finds a different key set (never the keys)
        self.on_reload = on_reload
        self._loaded = False
        self._lock = threading.Lock()
        self._signature: tuple | None = None
        self._keys: dict[bytes, str] = {}  # digest -> key id (file name)
        self._checked = 0.0

    def _scan_signature(self) -> tuple:
        """Cheap fingerprint of the directory: names, mtimes, sizes (stat only, no reads)."""
        try:
            entries = []
            with os.scandir(self.directory) as it:
                for e in it:
                    if e.name.startswith("."):
                        continue
                    try:
                        st = e.stat()  # follows symlinks
                    except OSError:
                        continue
                    entries.append((e.name, st.st_mtime_ns, st.st_size, st.st_ino))
            return (self.directory.stat().st_mtime_ns, tuple(sorted(entries)))
        except OSError:
            return ()

    def _load(self) -> dict[bytes, str]:
        keys: dict[bytes, str] = dict(self._env_keys)
        try:
            names = sorted(os.listdir(self.directory))
        except OSError:
            return keys
        for name in names:
            path = self.directory / name
            if name.startswith(".") or not path.is_file():
                continue
            try:
                key = path.read_text(encoding="utf-8").strip()
            except (OSError, UnicodeDecodeError):
                continue
            if key:
                keys[_digest(key)] = name
        return keys

    def refresh(self, force: bool = False) -> None:
        now = time.monotonic()
        with self._lock:
            if not force and now - self._checked < self.recheck:
                return
            self._checked = now
            sig = self._scan_signature()
            if not force and sig == self._signature:
                return
            keys = self._load()
            changed = self._loaded and keys != self._keys
            self._keys, self._signature, self._loaded = keys, sig, True
        if changed and self.on_reload is not None:
            self.on_reload(sorted(keys.values()))

    def ids(self) -> list[str]:
        """The ids (file names) of the valid keys."""
        self.refresh()
        return sorted(self._keys.values())

    def count(self) -> int:
        self.refresh()
        return len(self._keys)

    def check(self, presented: str) -> str | None:
        """The id (file name) of the matching key, or None. Compares digests in constant time."""
        self.refresh()
        if not presented:
            return None
        digest = _digest(presented)
        found = None
        for known, key_id in self._keys.items():
            if hmac.compare_digest(known, digest):
                found = key_id
        return found
