"""The edge's publisher: put a new configuration in front of the gateway, atomically.

Pulumi's Docker provider can only write files into a container when it creates it, so each
configuration (settings + keys) arrives in a fresh, short-lived *publisher* container built
from the gateway image: its files are uploaded to ``/staging``, it copies them into the
site's config volume as ``rev-<revision>/`` and swaps the ``current`` link with one rename,
then waits until the gateway reports that revision applied. Only then is it healthy, so
``pulumi up`` (which waits for it) removes the replaced payload container after the gateway
has moved off it. The staged copy is deleted; the process then sleeps, holding nothing.
"""

from __future__ import annotations

import os
import shutil
import sys
import time
from pathlib import Path


def publish(staging: Path, config_dir: Path, state_dir: Path, revision: str, timeout: float) -> int:
    target = config_dir / f"rev-{revision}"
    tmp = config_dir / f".rev-{revision}.tmp"
    shutil.rmtree(tmp, ignore_errors=True)
    (tmp / "keys").mkdir(mode=0o700, parents=True)
    tmp.chmod(0o700)
    # staged flat (gateway.json, key-<n>): the provider uploads files as root into /staging,
    # which this user owns, so it can delete them afterwards but not subdirectories
    for staged in sorted(staging.iterdir()):
        dest = tmp / staged.name if staged.name == "gateway.json" else tmp / "keys" / staged.name
        shutil.copyfile(staged, dest)
        dest.chmod(0o400)
    shutil.rmtree(target, ignore_errors=True)
    os.replace(tmp, target)
    link_tmp = config_dir / ".current.tmp"
    link_tmp.unlink(missing_ok=True)
    link_tmp.symlink_to(target.name)
    os.replace(link_tmp, config_dir / "current")
    for staged in staging.iterdir():
        staged.unlink(missing_ok=True)
    print(f"published revision {revision}; waiting for the gateway", flush=True)
    deadline = time.monotonic() + timeout
    applied = state_dir / "applied"
    while time.monotonic() < deadline:
        try:
            if applied.read_text().strip() == revision:
                break
        except OSError:
            pass
        time.sleep(0.2)
    else:
        print(
            f"the gateway did not apply revision {revision} within {timeout:.0f} s",
            file=sys.stderr,
            flush=True,
        )
        return 1
    for old in config_dir.glob("rev-*"):
        if old.name != target.name:
            shutil.rmtree(old, ignore_errors=True)
    Path("/tmp/applied").write_text(revision)
    print(f"gateway applied revision {revision}", flush=True)
    return 0
