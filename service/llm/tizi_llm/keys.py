"""API keys read from files, re-read when the directory changes, several valid at once.

Same contract as the reference service (service/tizi_service/keys.py): every non-empty
regular file in the directory holds one key (hidden names skipped, symlinks followed, so a
Kubernetes secret volume with its `..data` symlinks works). Rotation without a restart: add
the new key file, move clients over, delete the old file. Only SHA-256 digests are kept in
memory; a key's file name is its id in the logs. No file, no key: every request is refused.
"""

from __future__ import annotations

import hashlib
import hmac
import os
import threading
import time
from collections.abc import Callable
from pathlib import Path


def _digest(key: str) -> bytes:
    return hashlib.sha256(key.encode("utf-8")).digest()


class KeyStore:
    """Checks bearer keys against the key files, looking for changes at most every `recheck` s."""

    def __init__(
        self,
        directory: str | os.PathLike[str],
        recheck: float = 1.0,
        on_reload: Callable[[list[str]], None] | None = None,
    ) -> None:
        self.directory = Path(directory)
        self.recheck = recheck
        self.on_reload = on_reload
        self._lock = threading.Lock()
        self._signature: tuple | None = None
        self._keys: dict[bytes, str] = {}  # digest -> key id (file name)
        self._checked = float("-inf")
        self._loaded = False  # on_reload reports changes after the first load

    def _scan_signature(self) -> tuple:
        """A cheap fingerprint of the directory (stat only, no reads)."""
        try:
            entries = []
            with os.scandir(self.directory) as it:
                for entry in it:
                    if entry.name.startswith("."):
                        continue
                    try:
                        st = entry.stat()  # follows symlinks
                    except OSError:
                        continue
                    entries.append((entry.name, st.st_mtime_ns, st.st_size, st.st_ino))
            return (self.directory.stat().st_mtime_ns, tuple(sorted(entries)))
        except OSError:
            return ()

    def _load(self) -> dict[bytes, str]:
        keys: dict[bytes, str] = {}
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
            signature = self._scan_signature()
            if not force and signature == self._signature:
                return
            keys = self._load()
            changed = self._loaded and keys != self._keys
            self._keys, self._signature, self._loaded = keys, signature, True
        if changed and self.on_reload is not None:
            self.on_reload(sorted(keys.values()))

    def ids(self) -> list[str]:
        self.refresh()
        return sorted(self._keys.values())

    def check(self, presented: str) -> str | None:
        """The id (file name) of the matching key, or None; digests compared in constant time."""
        self.refresh()
        if not presented:
            return None
        digest = _digest(presented)
        found = None
        for known, key_id in self._keys.items():
            if hmac.compare_digest(known, digest):
                found = key_id
        return found
