"""The docker CLI calls a bundle needs: image inspect, save, load, create, cp and rm.

Images move by `docker save` and `docker load` alone: no registry is involved. Every call
runs the docker client found on PATH (looked for before any slow work) against the engine
at docker_host, or $DOCKER_HOST; a call is capped at DOCKER_TIMEOUT seconds unless its
caller lifts the cap (save, load and the copy of model files out of an image), and a
non-zero exit is one BundleError line carrying docker's stderr (or the exit status).
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from collections.abc import Mapping
from typing import Any, BinaryIO

from components.ops.bundle.errors import BundleError, _reason, _show
from components.ops.bundle.manifest import _IMAGE_ID

#: Seconds for the short docker calls (inspect, create, cp, rm); save and load are not capped.
DOCKER_TIMEOUT = 300


def _env(docker_host: str | None) -> dict[str, str]:
    env = dict(os.environ)
    if docker_host:
        env["DOCKER_HOST"] = docker_host
    return env


def _docker_cli(env: Mapping[str, str]) -> str:
    """The docker client on the PATH the calls will use; checked before any slow work."""
    found = shutil.which("docker", path=env.get("PATH", os.defpath))
    if found is None:
        raise BundleError("the docker CLI is not on PATH: install it (the client is enough) or fix PATH")
    return found


def _stderr_line(stderr: bytes | str | None, code: int) -> str:
    text = stderr.decode(errors="replace") if isinstance(stderr, bytes) else stderr or ""
    text = " ".join(text.split())
    if len(text) > 400:
        text = "…" + text[-399:]
    return text or f"exit status {code}"


def _docker(
    args: list[str], docker_host: str | None, timeout: float | None = DOCKER_TIMEOUT, **kw: Any
) -> subprocess.CompletedProcess[Any]:
    env = _env(docker_host)
    cli = _docker_cli(env)
    kw.setdefault("stdout", subprocess.PIPE)
    kw.setdefault("stderr", subprocess.PIPE)
    try:
        proc = subprocess.run([cli, *args], env=env, timeout=timeout, **kw)
    except subprocess.TimeoutExpired:
        raise BundleError(f"docker {' '.join(args[:2])} did not finish within {timeout} s") from None
    except OSError as exc:
        raise BundleError(f"cannot run {cli}: {_reason(exc)}") from None
    if proc.returncode != 0:
        what = " ".join(args[:2]) if args[0] == "image" else args[0]
        raise BundleError(f"docker {what} failed: {_stderr_line(proc.stderr, proc.returncode)}")
    return proc


def image_id(image: str, docker_host: str | None = None) -> str:
    out = _docker(["image", "inspect", "--format", "{{.Id}}", image], docker_host, text=True)
    return str(out.stdout).strip()


def _docker_load(spooled: BinaryIO, docker_host: str | None) -> None:
    """Feed the verified copy, through the descriptor it was written with, to docker load."""
    try:
        spooled.flush()
        spooled.seek(0)
    except OSError as exc:
        raise BundleError(f"cannot read back the spool copy of image.tar: {_reason(exc)}") from None
    _docker(["load", "--quiet"], docker_host, timeout=None, stdin=spooled)


def _inspect(image: str, docker_host: str | None) -> tuple[str, dict[str, str]]:
    """The image's id and labels, in one call (the labels say where its model files are)."""
    out = _docker(
        ["image", "inspect", "--format", "{{.Id}} {{json .Config.Labels}}", image], docker_host, text=True
    )
    found, _, rest = str(out.stdout).strip().partition(" ")
    try:
        labels = json.loads(rest) if rest else None
    except ValueError:
        labels = "?"
    if not _IMAGE_ID.fullmatch(found) or not isinstance(labels, dict | None):
        raise BundleError(f"docker image inspect {image} returned {_show(out.stdout)}, not an id and labels")
    return found, {str(k): str(v) for k, v in (labels or {}).items()}
