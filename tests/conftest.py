"""Shared test policy: tiers by folder, and what a missing prerequisite means.

Each test folder is one tier (``unit``, ``edge``, ``engine``, ``cluster``) and gets that
marker automatically, so ``pytest -m unit`` is the fast inner loop.  Under ``CI=true``
a missing prerequisite (Docker, the Pulumi CLI, a cluster) fails the test; elsewhere
the test skips and says why.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

TIERS = ("unit", "edge", "engine", "cluster", "conformance")
REPO = Path(__file__).resolve().parent.parent


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    for item in items:
        relative = Path(str(item.fspath)).resolve().relative_to(REPO / "tests")
        tier = relative.parts[0]
        if tier in TIERS:
            item.add_marker(getattr(pytest.mark, tier))


def require(condition: bool, reason: str) -> None:
    """Skip with ``reason`` outside CI; fail under CI=true, where nothing may be missing."""
    if condition:
        return
    if os.environ.get("CI", "").lower() == "true":
        pytest.fail(f"prerequisite missing under CI=true: {reason}", pytrace=False)
    pytest.skip(reason)


def docker_provider_binary() -> str:
    """Which ``pulumi-resource-docker`` the engine will run: path, sha256 prefix and origin."""
    import hashlib
    import shutil

    path = shutil.which("pulumi-resource-docker")
    if path is None:
        home = Path(os.environ.get("PULUMI_HOME", Path.home() / ".pulumi"))
        found = sorted(home.glob("plugins/resource-docker-v*/pulumi-resource-docker"))
        path = str(found[-1]) if found else None
    if path is None:
        return "docker provider: none found (run scripts/toolchain.sh ensure)"
    data = Path(path).read_bytes()
    standin = b"tizi.local/docker-standin" in data
    origin = "tizi's stand-in (provider/docker-standin)" if standin else "upstream pulumi-docker"
    return f"docker provider: {path} sha256:{hashlib.sha256(data).hexdigest()[:12]} ({origin})"


def pytest_report_header(config: pytest.Config) -> str:
    """The session header names the docker provider binary the engine tier runs against."""
    return docker_provider_binary()
