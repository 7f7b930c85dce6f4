"""The spool: the private, unnamed copy of image.tar that `docker load` reads.

While the bundle is read (verify.py), the image part is decompressed into an unnamed
temporary file (mode 0600) in a private directory (mode 0700) under $TMPDIR, written only
with bytes that are being hashed. Disk cost: one decompressed copy of image.tar (its size,
from the signed manifest, is checked against the free space of $TMPDIR before copying; set
TMPDIR to a disk with room) for the duration of the load. The copy goes when load returns,
fails or is interrupted; being unnamed, it goes even on SIGKILL (only the empty private
directory would stay).
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path
from typing import BinaryIO

from components.ops.bundle.errors import BundleError, _reason


class _Spool:
    """The private copy of image.tar that `docker load` reads: unnamed, mode 0600, in a
    mode-0700 directory, written only with bytes that are being hashed."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory
        try:
            # closed by load_bundle's `with spool.file`, after docker load has read it
            self.file: BinaryIO = tempfile.TemporaryFile(dir=directory)  # noqa: SIM115
        except OSError as exc:
            raise BundleError(f"cannot create the spool file in {directory}: {_reason(exc)}") from None

    def reserve(self, size: int) -> None:
        try:
            st = os.statvfs(self.directory)
        except OSError as exc:
            raise BundleError(f"{self.directory}: {_reason(exc)}") from None
        free = st.f_bavail * st.f_frsize
        if size > free:
            raise BundleError(
                f"{self.directory.parent} has {free} bytes free, the verified copy of image.tar "
                f"needs {size}: set TMPDIR to a disk with room"
            )

    def write(self, data: bytes) -> None:
        try:
            self.file.write(data)
        except OSError as exc:
            raise BundleError(f"cannot write the spool copy of image.tar: {_reason(exc)}") from None
