"""The offline bundle round trip onto the ssh:// edge engine, and refusal of bad bundles."""

from __future__ import annotations

import shutil
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from click.testing import CliRunner

from components.cli.bundle import bundle
from components.ops.bundle import BundleError, load_bundle, verify_bundle
from tests.edge.conftest import ENGINES, docker, start_service


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
