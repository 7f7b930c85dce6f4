"""The signed offline bundle onto the ssh:// edge engine, and refusal of bad bundles.

The many hostile inputs (no Docker needed) are in tests/unit/test_bundle_hostile.py,
tests/unit/test_bundle_signing.py and tests/unit/test_bundle_fuzz.py; here the real
engines: what a refusal leaves in the engine (nothing), what docker's own errors look like
(one line), that the engine gets the verified bytes even when the file is replaced between
the check and `docker load`, and the LLM payload (server image + model image) in one bundle.
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
from components.ops.bundle import docker as bundle_docker
from components.ops.bundle import load as bundle_load
from tests.conftest import require
from tests.edge.conftest import ENGINES, docker, start_service
from tests.unit.test_bundle_hostile import KEYS, PUBLIC, bundle_bytes, manifest_for

LLM_IMAGES = ("tizi/llm-server:0.1.0", "tizi/model-smollm2:0.1.0")


@pytest.fixture
def bundle_ref(image: str) -> Iterator[str]:
    """A unique tag of the image, absent from the edge engine, so 'nothing loaded' is testable."""
    ref = f"tizi/inference-service:bundle-{uuid.uuid4().hex[:8]}"
    docker("default", "tag", image, ref)
    docker("edge", "rmi", ref, check=False)
    yield ref
    docker("default", "rmi", ref, check=False)
    docker("edge", "rmi", ref, check=False)


@pytest.fixture
def site_keys(tmp_path: Path) -> tuple[Path, Path]:
    """A key pair made as an operator makes it (unencrypted: no terminal here)."""
    secret, public = tmp_path / "site.key", tmp_path / "site.pub"
    core.generate_key_pair(secret, public, None)
    return secret, public


def _present(engine: str, ref: str) -> bool:
    return docker(engine, "image", "inspect", ref, check=False).returncode == 0


def test_bundle_round_trip(bundle_ref: str, site_keys: tuple[Path, Path], tmp_path: Path) -> None:
    secret, public = site_keys
    out = tmp_path / "site.tar"
    spec = tmp_path / "spec.yaml"
    spec.write_text("service:\n  name: inference\n  port: 8080\n")
    runner = CliRunner()

    created = runner.invoke(
        bundle, ["--image", bundle_ref, "-o", str(out), "--spec", str(spec), "--secret-key", str(secret)]
    )
    assert created.exit_code == 0, created.output
    manifest = verify_bundle(out, public)
    assert manifest["spec"] == {"service": {"name": "inference", "port": 8080}}
    assert {p["path"] for p in manifest["parts"]} >= {"image.tar.zst", "model/model.json"}
    image = manifest["parts"][0]
    assert image["size"] < image["tar_size"] // 2  # the layers compress
    assert runner.invoke(bundle, ["verify", "--pubkey", str(public), str(out)]).exit_code == 0

    # A corrupted copy (one byte flipped inside the image), a truncated one and the good one
    # checked with another site's key are refused with a clear message, and nothing reaches
    # the edge engine.
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
    other = tmp_path / "other"
    other.mkdir()
    core.generate_key_pair(other / "o.key", other / "o.pub", None)
    for bad, key, reason in (
        (corrupt, public, "sha256 mismatch"),
        (truncated, public, "truncated"),
        (out, other / "o.pub", "signed by another key"),
    ):
        with pytest.raises(BundleError, match=reason):
            load_bundle(bad, key, ENGINES["edge"])
        result = runner.invoke(
            bundle, ["load", "--pubkey", str(key), str(bad), "--docker-host", "ssh://tizi-edge"]
        )
        assert result.exit_code == 1
        assert "REFUSED" in result.output and reason in result.output
        assert not _present("edge", bundle_ref)

    loaded = runner.invoke(
        bundle, ["load", "--pubkey", str(public), str(out), "--docker-host", "ssh://tizi-edge"]
    )
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
    """A signed bundle consistent with its manifest whose image.tar is not an image: verify
    passes, the edge engine refuses it, tizi says so in one line, and the ref is not there."""
    bad = tmp_path / "not-an-image.tar"
    bad.write_bytes(bundle_bytes(manifest_for(images=[{"ref": bundle_ref, "id": "sha256:" + "0" * 64}])))
    public = tmp_path / "test.pub"
    public.write_bytes(bytes(PUBLIC) + b"\n")
    verify_bundle(bad, public)
    result = CliRunner().invoke(
        bundle, ["load", "--pubkey", str(public), str(bad), "--docker-host", "ssh://tizi-edge"]
    )
    _one_line_refusal(result, "REFUSED: docker load failed: ")
    assert not _present("edge", bundle_ref)


def test_the_engine_gets_the_verified_bytes_when_the_file_is_replaced(
    bundle_ref: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Between the check and `docker load` the bundle is replaced by one, signed by the same
    key, whose image is garbage; the real engine still loads the verified image from the
    spool, with its id."""
    out = tmp_path / "site.tar"
    manifest = core.create_bundle([bundle_ref], out, KEYS.secret_key, {}, None, ENGINES["default"])
    evil = tmp_path / "evil.tar"
    evil.write_bytes(bundle_bytes(manifest_for(images=manifest["images"])))
    real_load = bundle_docker._docker_load

    def replace_then_load(spooled: Any, docker_host: str | None) -> None:
        os.replace(evil, out)
        real_load(spooled, docker_host)

    monkeypatch.setattr(bundle_load, "_docker_load", replace_then_load)
    assert load_bundle(out, PUBLIC, ENGINES["edge"]) == [bundle_ref]
    assert not evil.exists() and out.stat().st_size < 1 << 20  # the file now is the small, evil one
    edge_id = docker("edge", "image", "inspect", "-f", "{{.Id}}", bundle_ref).stdout.decode().strip()
    assert edge_id == manifest["images"][0]["id"]


@pytest.fixture
def llm_refs(engines: dict[str, str | None]) -> Iterator[tuple[str, str]]:
    """Unique tags of the LLM server and model images (built by `make llm`), absent from
    the edge engine; removed from both engines afterwards."""
    for ref in LLM_IMAGES:
        require(_present("default", ref), f"{ref} is not built: run make llm")
    tag = f"bundle-{uuid.uuid4().hex[:8]}"
    refs = (f"tizi/llm-server:{tag}", f"tizi/model-smollm2:{tag}")
    for src, ref in zip(LLM_IMAGES, refs, strict=True):
        docker("default", "tag", src, ref)
    yield refs
    for ref in refs:
        docker("default", "rmi", ref, check=False)
        docker("edge", "rmi", ref, check=False)


def test_the_llm_payload_in_one_bundle(
    llm_refs: tuple[str, str], site_keys: tuple[Path, Path], tmp_path: Path
) -> None:
    """Server image and model image in one signed bundle: one `docker save` (the shared
    Debian base once), the GGUF copied out of the model image's /model and stored as it is,
    both images on the edge engine with the ids the manifest signed."""
    secret, public = site_keys
    server, model = llm_refs
    out = tmp_path / "llm.tar"
    args = ["-o", str(out), "--secret-key", str(secret), "--image", server, "--image", model]
    created = CliRunner().invoke(bundle, args)
    assert created.exit_code == 0, created.output
    manifest = verify_bundle(out, public)
    assert [i["ref"] for i in manifest["images"]] == [server, model]
    labels = docker("default", "image", "inspect", "-f", "{{json .Config.Labels}}", model).stdout
    weights = [p for p in manifest["parts"] if p["path"].endswith(".gguf")]
    assert len(weights) == 1 and weights[0]["sha256"].encode() in labels  # org.tizi.model.sha256
    print(f"\nLLM bundle: {out.stat().st_size} bytes; parts: " + ", ".join(
        f"{p['path']} {p['size']}" + (f" (image.tar {p['tar_size']})" if "tar_size" in p else "")
        for p in manifest["parts"]
    ))  # fmt: skip

    loaded = CliRunner().invoke(
        bundle, ["load", "--pubkey", str(public), str(out), "--docker-host", "ssh://tizi-edge"]
    )
    assert loaded.exit_code == 0, loaded.output
    for image in manifest["images"]:
        edge_id = docker("edge", "image", "inspect", "-f", "{{.Id}}", image["ref"]).stdout.decode().strip()
        assert edge_id == image["id"]
