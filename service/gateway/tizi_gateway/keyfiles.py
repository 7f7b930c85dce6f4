"""The API keys, read from a directory of files: the convention every tizi target uses.

One key per regular, non-hidden file (symlinks followed: Kubernetes Secret volumes swap a
``..data`` link). A key's *id* is a digest prefix of the key itself, not the file name: it
stays the same when a rotation renumbers the files, so a key's metrics are one series over
its whole life, and it tells nothing usable about the key.
"""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

#: longest accepted key; API keys are short, and Envoy holds them in memory
MAX_KEY_BYTES = 512


def key_id(key: str) -> str:
    """The id metrics and logs show for a key (10 hex digits of its SHA-256)."""
    return "key-" + hashlib.sha256(key.encode("utf-8")).hexdigest()[:10]


def read_keys(directory: Path) -> dict[str, str]:
    """``{id: key}`` for every usable key file; unreadable, empty or oversized files are skipped.

    A key with characters a header cannot carry (spaces, controls) is skipped too: no client
    could ever present it.
    """
    keys: dict[str, str] = {}
    try:
        entries = sorted(os.scandir(directory), key=lambda e: e.name)
    except OSError:
        return keys
    for entry in entries:
        if entry.name.startswith("."):
            continue
        try:
            if not entry.is_file():
                continue
            raw = Path(entry.path).read_bytes()[: MAX_KEY_BYTES + 1]
        except OSError:
            continue
        try:
            key = raw.decode("utf-8").strip()
        except UnicodeDecodeError:
            continue
        if not key or len(raw) > MAX_KEY_BYTES or not key.isprintable() or " " in key:
            continue
        keys[key_id(key)] = key
    return keys


def signature(directory: Path) -> tuple:
    """A cheap fingerprint of the key directory (names, sizes, mtimes, inodes), for polling."""
    try:
        with os.scandir(directory) as it:
            rows = []
            for e in it:
                try:
                    st = e.stat()
                except OSError:
                    continue
                rows.append((e.name, st.st_size, st.st_mtime_ns, st.st_ino))
        return (directory.stat().st_mtime_ns, tuple(sorted(rows)))
    except OSError:
        return ()
