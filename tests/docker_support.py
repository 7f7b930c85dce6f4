"""The one ``docker`` helper of every tier: the CLI against a chosen engine, failures as
assertions that carry docker's own message."""

from __future__ import annotations

import os
import subprocess
from typing import Any


def docker_env(host: str | None) -> dict[str, str]:
    """This process's environment with DOCKER_HOST set to ``host`` (or removed: the default engine)."""
    env = dict(os.environ)
    env.pop("DOCKER_HOST", None)
    if host:
        env["DOCKER_HOST"] = host
    return env


def docker(
    *args: str, host: str | None = None, check: bool = True, data: bytes | None = None,
    timeout: float = 180, text: bool = True,
) -> subprocess.CompletedProcess[Any]:  # fmt: skip
    """Run ``docker ARGS`` on ``host``; text output unless ``text=False`` (images, tar streams)."""
    proc = subprocess.run(
        ["docker", *args], env=docker_env(host), input=data, capture_output=True, timeout=timeout,
        text=text and data is None,
    )  # fmt: skip
    if check and proc.returncode != 0:
        err = proc.stderr if isinstance(proc.stderr, str) else proc.stderr.decode(errors="replace")
        raise AssertionError(f"docker {' '.join(args)} failed: {err}")
    return proc
