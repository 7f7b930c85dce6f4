"""The offline bundle round trip onto the ssh:// edge engine, and refusal of bad bundles.

The many hostile inputs (no Docker needed) are in tests/unit/test_bundle_hostile.py and
tests/unit/test_bundle_fuzz.py; here the real engines: what a refusal leaves in the engine
(nothing), what docker's own errors look like (one line), and that the engine gets the
verified bytes even when the file is replaced between the check and `docker load`.
"""

from __future__ import annotations

import os
import shutil
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from components.cli.bundle import bundle
from components.ops import bundle as core
from components.ops.bundle import BundleError, load_bundle, verify_bundle
from tests.edge.conftest import ENGINES, docker, start_service
from tests.unit.test_bundle_hostile import bundle_bytes, manifest_for


@pytest.fixture
def bundle_ref(image: str) -> Iterator[str]:
    """A unique tag of the image, absent from the edge engine, so 'nothing loaded' is testable."""
    ref = f"tizi/inference-service:bundle-{uuid.uuid4().hex[:8]}"
    docker("default", "tag", image, ref)
    docker("edge", "rmi", ref, check=False)
    yield ref
    docker("default", "rmi", ref, check=False)
    docker("edge", "rmi", ref, check=False)


def _present(engine: str, ref: str) -> bool:
    return docker(engine, "image", "inspect", ref, check=False).returncode == 0


def test_bundle_round_trip(bundle_ref: str, tmp_path: Path) -> None:
    out = tmp_path / "site.tar"
    spec = tmp_path / "spec.yaml"
    spec.write_text("service:\n  name: inference\n  port: 8080\n")
    runner = CliRunner()

    created = runner.invoke(bundle, ["--image", bundle_ref, "-o", str(out), "--spec", str(spec)])
    assert created.exit_code == 0, created.output
    manifest = verify_bundle(out)
    assert manifest["spec"] == {"service": {"name": "inference", "port": 8080}}
    assert {p["path"] for p in manifest["parts"]} >= {"image.tar", "model/model.json"}
    assert runner.invoke(bundle, ["verify", str(out)]).exit_code == 0

    # A corrupted copy (one byte flipped inside the image) and a truncated one are refused
    # with a clear message, and nothing reaches the edge engine.
    corrupt = tmp_path / "corrupt.tar"
    shutil.copyfile(out, corrupt)
    with open(corrupt, "r+b") as f:
        f.seek(out.stat().st_size // 2)
        b = f.read(1)
        f.seek(-1, 1)
        f.write(bytes([b[0] ^ 0xFF]))
    truncated = tmp_path / "truncated.tar"
    with open(out, "rb") as src, open(truncated, "wb") as dst:
        dst.write(src.read(out.stat().st_size * 2 // 3))
    for bad, reason in ((corrupt, "sha256 mismatch"), (truncated, "truncated")):
        with pytest.raises(BundleError, match=reason):
            load_bundle(bad, ENGINES["edge"])
        result = runner.invoke(bundle, ["load", str(bad), "--docker-host", "ssh://tizi-edge"])
        assert result.exit_code == 1
        assert "REFUSED" in result.output
        assert not _present("edge", bundle_ref)

    loaded = runner.invoke(bundle, ["load", str(out), "--docker-host", "ssh://tizi-edge"])
    assert loaded.exit_code == 0, loaded.output
    assert _present("edge", bundle_ref)

    service = start_service("edge", bundle_ref, "bundle")
    try:
        status, data = service.chat("ⴰⵣⵓⵍ ⴼⵍⵍⴰⵡⵏ", service.keys["key-b"])
        assert status == 200
        assert data["choices"][0]["message"]["content"] == "zgh"
    finally:
        service.remove()


def _one_line_refusal(result: Any, match: str) -> None:
    assert result.exit_code == 1, result.output
    assert result.exception is None or isinstance(result.exception, SystemExit), repr(result.exception)
    lines = result.stderr.splitlines()
    assert len(lines) == 1 and "Traceback" not in result.output, result.output
    assert match in lines[0], lines[0]


def test_docker_load_errors_are_one_line_and_load_nothing(bundle_ref: str, tmp_path: Path) -> None:
    """A bundle consistent with its manifest whose image.tar is not an image: verify passes,
    the edge engine refuses it, tizi says so in one line, and the ref is not there."""
    bad = tmp_path / "not-an-image.tar"
    bad.write_bytes(bundle_bytes(manifest_for(image={"ref": bundle_ref, "id": "sha256:" + "0" * 64})))
    verify_bundle(bad)
    result = CliRunner().invoke(bundle, ["load", str(bad), "--docker-host", "ssh://tizi-edge"])
    _one_line_refusal(result, "REFUSED: docker load failed: ")
    assert not _present("edge", bundle_ref)


def test_the_engine_gets_the_verified_bytes_when_the_file_is_replaced(
    bundle_ref: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Between the check and `docker load` the bundle is replaced by one whose image is
    garbage; the real engine still loads the verified image from the spool, with its id."""
    out = tmp_path / "site.tar"
    manifest = core.create_bundle(bundle_ref, out, {}, None, ENGINES["default"])
    evil = tmp_path / "evil.tar"
    evil.write_bytes(bundle_bytes(manifest_for(image=manifest["image"])))
    real_load = core._docker_load

    def replace_then_load(spooled: Any, docker_host: str | None) -> None:
        os.replace(evil, out)
        real_load(spooled, docker_host)

    monkeypatch.setattr(core, "_docker_load", replace_then_load)
    assert load_bundle(out, ENGINES["edge"]) == bundle_ref
    assert not evil.exists() and out.stat().st_size < 1 << 20  # the file now is the small, evil one
    edge_id = docker("edge", "image", "inspect", "-f", "{{.Id}}", bundle_ref).stdout.decode().strip()
    assert edge_id == manifest["image"]["id"]
