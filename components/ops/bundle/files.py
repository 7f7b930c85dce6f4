"""Opening the files an operator names: regular files only, so no read blocks or never ends.

A bundle, a key or a spec path may name a FIFO (opening it blocks until a writer comes) or a
device such as /dev/zero (reading it never ends): `open_regular` refuses both, before and
after opening.
"""

from __future__ import annotations

import io
import os
import stat
from pathlib import Path

from components.ops.bundle.errors import BundleError, _reason

#: Bytes read, hashed, copied or (de)compressed at a time.
CHUNK = 1 << 20


def _not_regular(mode: int) -> str | None:
    for test, kind in (
        (stat.S_ISDIR, "a directory"), (stat.S_ISFIFO, "a FIFO"),
        (stat.S_ISCHR, "a character device"), (stat.S_ISBLK, "a block device"),
        (stat.S_ISSOCK, "a socket"),
    ):  # fmt: skip
        if test(mode):
            return kind
    return None if stat.S_ISREG(mode) else "not a regular file"


def open_regular(path: Path, what: str = "bundle file") -> io.FileIO:
    """Open `path` for reading only if it is a regular file; BundleError otherwise.

    The type is checked before opening because opening a FIFO blocks until a writer comes and
    a device such as /dev/zero never ends. The open is non-blocking and the type is checked
    again on the descriptor, so a FIFO swapped in between cannot block us either.
    """
    try:
        kind = _not_regular(os.stat(path).st_mode)
    except OSError as exc:
        raise BundleError(f"{path}: {_reason(exc)}") from None
    if kind:
        raise BundleError(f"{path} is {kind}, not a {what}")
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | os.O_NOCTTY | os.O_CLOEXEC)
    except OSError as exc:
        raise BundleError(f"{path}: cannot open: {_reason(exc)}") from None
    try:
        kind = _not_regular(os.fstat(fd).st_mode)
        if kind:
            raise BundleError(f"{path} is {kind}, not a {what}")
        os.set_blocking(fd, True)
        return os.fdopen(fd, "rb", buffering=0)
    except BaseException:
        os.close(fd)
        raise


def read_small_file(path: Path, what: str, cap: int) -> bytes:
    """The whole of a small regular file (a spec), refused over `cap` bytes, one-line errors."""
    with open_regular(path, what) as f:
        try:
            data = f.read(cap + 1)
        except OSError as exc:
            raise BundleError(f"{path}: cannot read: {_reason(exc)}") from None
    if len(data) > cap:
        raise BundleError(f"{path}: over {cap} bytes, too large for a {what}")
    return data
