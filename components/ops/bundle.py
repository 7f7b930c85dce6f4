"""Offline bundles: one file a technician carries to a site with no connectivity.

A bundle is an uncompressed tar (the image layers are already compressed or incompressible,
and tar lets `load` stream the image into `docker load` without a temporary copy):

    manifest.json          first member, so it is read before anything else
    image.tar              `docker save` of the service image
    model/<files>          the model files baked into the image, for audit and checks

manifest.json holds the format version, the image reference and id, the sha256 and size of
every part, and the service spec dict the bundle was made for. `verify_bundle` reads the
whole file, recomputes every digest and refuses a corrupted, truncated, incomplete or padded
bundle with a `BundleError` that says which part is wrong. `load_bundle` verifies first and
only then streams image.tar into the engine named by a DOCKER_HOST (unix://, ssh://, tcp://),
so a bad bundle loads nothing. No registry is involved anywhere.

This is integrity, not authenticity: whoever can rewrite the file can rewrite the manifest.
Signing the manifest is the next step when bundles travel through untrusted hands.
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import json
import os
import subprocess
import tarfile
import tempfile
import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path, PurePosixPath
from typing import Any, BinaryIO

FORMAT = "tizi-bundle/1"
MANIFEST = "manifest.json"
IMAGE_PART = "image.tar"
MODEL_PREFIX = "model/"
DEFAULT_MODEL_PATH = "/opt/tizi/model"
CHUNK = 1 << 20


class BundleError(Exception):
    """The bundle cannot be trusted or used; the message says why."""


def _env(docker_host: str | None) -> dict[str, str]:
    env = dict(os.environ)
    if docker_host:
        env["DOCKER_HOST"] = docker_host
    return env


def _docker(args: list[str], docker_host: str | None, **kw: Any) -> subprocess.CompletedProcess:
    try:
        return subprocess.run(["docker", *args], env=_env(docker_host), check=True, capture_output=True, **kw)
    except FileNotFoundError:
        raise BundleError("the docker CLI is not installed") from None
    except subprocess.CalledProcessError as exc:
        err = exc.stderr.decode(errors="replace") if isinstance(exc.stderr, bytes) else exc.stderr
        raise BundleError(f"docker {args[0]} failed: {err.strip()}") from None


def _sha256_file(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(CHUNK), b""):
            h.update(block)
    return h.hexdigest()


def image_id(image: str, docker_host: str | None = None) -> str:
    out = _docker(["image", "inspect", "--format", "{{.Id}}", image], docker_host, text=True)
    return out.stdout.strip()


def extract_model_files(
    image: str, dest: Path, docker_host: str | None = None, path: str = DEFAULT_MODEL_PATH
) -> list[Path]:
    """Copy the model directory out of the image (docker create + docker cp, never started)."""
    cid = _docker(["create", image], docker_host, text=True).stdout.strip()
    try:
        stream = _docker(["cp", f"{cid}:{path}/.", "-"], docker_host).stdout
    finally:
        _docker(["rm", "-f", cid], docker_host)
    dest.mkdir(parents=True, exist_ok=True)
    files = []
    with tarfile.open(fileobj=io.BytesIO(stream), mode="r:") as tar:
        for m in tar.getmembers():
            if m.isfile():
                name = PurePosixPath(m.name).name
                src = tar.extractfile(m)
                assert src is not None
                (dest / name).write_bytes(src.read())
                files.append(dest / name)
    if not files:
        raise BundleError(f"no model files under {path} in {image}")
    return sorted(files)


def create_bundle(
    image: str,
    out: Path,
    spec: Mapping[str, Any] | None = None,
    model_dir: Path | None = None,
    docker_host: str | None = None,
) -> dict[str, Any]:
    """Write a bundle for `image` (read from the engine at docker_host) to `out`.

    The model files come from `model_dir`, or from the image's /opt/tizi/model when None.
    The file appears at `out` only once complete (written beside it, then renamed).
    """
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=out.parent, prefix=".tizi-bundle-") as tmp:
        work = Path(tmp)
        image_tar = work / IMAGE_PART
        with open(image_tar, "wb") as f:
            try:
                subprocess.run(
                    ["docker", "save", image], env=_env(docker_host), stdout=f,
                    stderr=subprocess.PIPE, check=True,
                )  # fmt: skip
            except subprocess.CalledProcessError as exc:
                raise BundleError(f"docker save failed: {exc.stderr.decode().strip()}") from None
        models = (
            sorted(p for p in Path(model_dir).iterdir() if p.is_file())
            if model_dir
            else extract_model_files(image, work / "model", docker_host)
        )
        parts = [(IMAGE_PART, image_tar, "image")]
        parts += [(MODEL_PREFIX + p.name, p, "model") for p in models]
        manifest = {
            "format": FORMAT,
            "created": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
            "image": {"ref": image, "id": image_id(image, docker_host)},
            "spec": dict(spec or {}),
            "parts": [
                {"path": name, "kind": kind, "size": p.stat().st_size, "sha256": _sha256_file(p)}
                for name, p, kind in parts
            ],
        }
        partial = work / "bundle.partial"
        with tarfile.open(partial, "w", format=tarfile.PAX_FORMAT) as tar:
            raw = json.dumps(manifest, indent=2, sort_keys=True).encode()
            info = tarfile.TarInfo(MANIFEST)
            info.size, info.mtime, info.mode = len(raw), int(time.time()), 0o644
            tar.addfile(info, io.BytesIO(raw))
            for name, p, _ in parts:
                info = tar.gettarinfo(str(p), arcname=name)
                info.uid = info.gid = 0
                info.uname = info.gname = ""
                with open(p, "rb") as f:
                    tar.addfile(info, f)
        os.replace(partial, out)
    return manifest


def _parse_manifest(raw: bytes) -> dict[str, Any]:
    try:
        manifest = json.loads(raw)
    except (ValueError, UnicodeDecodeError):
        raise BundleError("manifest.json is not valid JSON: the bundle is corrupted") from None
    if not isinstance(manifest, dict) or manifest.get("format") != FORMAT:
        raise BundleError(f"not a {FORMAT} manifest")
    parts = manifest.get("parts")
    if not isinstance(parts, list) or not parts:
        raise BundleError("manifest lists no parts")
    names = [p.get("path") for p in parts if isinstance(p, dict)]
    if len(names) != len(parts) or IMAGE_PART not in names or len(set(names)) != len(names):
        raise BundleError("manifest parts are malformed (missing image.tar or duplicates)")
    return manifest


@contextmanager
def _open_tar(path: Path) -> Iterator[tarfile.TarFile]:
    if not Path(path).is_file():
        raise BundleError(f"{path}: no such bundle file")
    try:
        with tarfile.open(path, mode="r:") as tar:
            yield tar
    except tarfile.TarError as exc:
        raise BundleError(f"{path}: not a readable bundle ({exc}); truncated or corrupted") from None


def _read_member(tar: tarfile.TarFile, member: tarfile.TarInfo, sink: BinaryIO | None) -> str:
    src = tar.extractfile(member)
    if src is None:
        raise BundleError(f"{member.name} is not a regular file")
    h = hashlib.sha256()
    remaining = member.size
    while remaining:
        block = src.read(min(CHUNK, remaining))
        if not block:
            raise BundleError(f"{member.name}: file ends early: the bundle is truncated")
        h.update(block)
        if sink is not None:
            sink.write(block)
        remaining -= len(block)
    return h.hexdigest()


def verify_bundle(path: Path) -> dict[str, Any]:
    """Check every part against the manifest; return the manifest or raise BundleError."""
    with _open_tar(path) as tar:
        try:
            first = tar.next()
            if first is None or first.name != MANIFEST or not first.isfile():
                raise BundleError("manifest.json is not the first member: not a tizi bundle")
            src = tar.extractfile(first)
            assert src is not None
            manifest = _parse_manifest(src.read())
            expected = {p["path"]: p for p in manifest["parts"]}
            seen: set[str] = set()
            for member in tar:
                if member is first:
                    continue
                if member.name not in expected:
                    raise BundleError(f"unexpected member {member.name!r} not in the manifest")
                want = expected[member.name]
                if member.size != want["size"]:
                    raise BundleError(
                        f"{member.name}: size {member.size} differs from manifest {want['size']}"
                    )
                if _read_member(tar, member, None) != want["sha256"]:
                    raise BundleError(f"{member.name}: sha256 mismatch: the bundle is corrupted")
                seen.add(member.name)
        except (tarfile.TarError, EOFError, OSError) as exc:
            raise BundleError(f"{path}: unreadable ({exc}): truncated or corrupted") from None
    missing = sorted(set(expected) - seen)
    if missing:
        raise BundleError(f"parts missing from the bundle (truncated?): {', '.join(missing)}")
    _check_model_metadata(path, manifest)
    return manifest


def _check_model_metadata(path: Path, manifest: dict[str, Any]) -> None:
    """If the model directory carries model.json, its digest must match the model file."""
    parts = {p["path"]: p for p in manifest["parts"]}
    meta_part = parts.get(MODEL_PREFIX + "model.json")
    if not meta_part:
        return
    with _open_tar(path) as tar:
        src = tar.extractfile(MODEL_PREFIX + "model.json")
        assert src is not None
        meta = json.loads(src.read())
    model_part = parts.get(MODEL_PREFIX + str(meta.get("file", "")))
    if model_part is None or model_part["sha256"] != meta.get("sha256"):
        raise BundleError("model.json does not describe the model file in the bundle")


def load_bundle(path: Path, docker_host: str | None = None) -> str:
    """Verify, then `docker load` the image into the engine at docker_host; return its ref."""
    manifest = verify_bundle(path)
    env = _env(docker_host)
    # Output goes to a file, not a pipe: a full pipe would stall docker while we feed stdin.
    with tempfile.TemporaryFile() as errf:
        try:
            proc = subprocess.Popen(
                ["docker", "load", "--quiet"], stdin=subprocess.PIPE,
                stdout=subprocess.DEVNULL, stderr=errf, env=env,
            )  # fmt: skip
        except FileNotFoundError:
            raise BundleError("the docker CLI is not installed") from None
        assert proc.stdin is not None
        digest = ""
        want = next(p for p in manifest["parts"] if p["path"] == IMAGE_PART)
        try:
            with _open_tar(path) as tar:
                member = tar.getmember(IMAGE_PART)
                digest = _read_member(tar, member, proc.stdin)  # type: ignore[arg-type]
        except BrokenPipeError:
            pass
        finally:
            with contextlib.suppress(BrokenPipeError):
                proc.stdin.close()
        code = proc.wait()
        errf.seek(0)
        err = errf.read().decode(errors="replace").strip()
    if code != 0:
        raise BundleError(f"docker load failed: {err}")
    if digest != want["sha256"]:  # the file changed between verify and load
        raise BundleError("image.tar changed while loading: the bundle is being modified")
    ref = manifest["image"]["ref"]
    loaded = image_id(ref, docker_host)
    if loaded != manifest["image"]["id"]:
        raise BundleError(f"loaded {ref} has id {loaded}, manifest says {manifest['image']['id']}")
    return ref
