"""The model files a bundle carries: from a directory, or out of the images that hold them.

Model files (weights, model.json) are bundled as model/<name>, stored as they are. They come
from a model directory, or out of the images that carry them, found by tizi's own labels (a
model image keeps them at /model, the reference image at /opt/tizi/model) and copied out
with docker create and docker cp, the container never started. Either way they are copied
into create's private work directory: the bundle is written from copies nobody else can
change between hashing and archiving.
"""

from __future__ import annotations

import os
import shutil
import stat
import tarfile
from collections.abc import Mapping
from pathlib import Path, PurePosixPath

from components.ops.bundle.docker import _docker
from components.ops.bundle.errors import BundleError, _reason, _show
from components.ops.bundle.files import CHUNK, open_regular
from components.ops.bundle.manifest import _SAFE_NAME, MAX_PARTS

#: Where tizi's reference image keeps its model (label org.tizi.model).
DEFAULT_MODEL_PATH = "/opt/tizi/model"
#: Where a model image (scripts/build-model-image.sh, label org.tizi.model.file) keeps its weights.
MODEL_IMAGE_PATH = "/model"
MODEL_FILE_LABEL = "org.tizi.model.file"
REFERENCE_MODEL_LABEL = "org.tizi.model"


def _safe_model_name(name: str, where: str) -> None:
    if not _SAFE_NAME.fullmatch(name):
        raise BundleError(
            f"{where}: {_show(name)} is not a safe model file name "
            "(letters, digits, . _ + -, not starting with a dot, at most 128)"
        )


def _model_sources(model_dir: Path) -> list[Path]:
    try:
        kind = None if stat.S_ISDIR(os.stat(model_dir).st_mode) else "not a directory"
        entries = sorted(os.scandir(model_dir), key=lambda e: e.name) if kind is None else []
    except OSError as exc:
        raise BundleError(f"{model_dir}: {_reason(exc)}") from None
    if kind:
        raise BundleError(f"{model_dir} is {kind}; --model-dir takes a directory of model files")
    files = []
    for entry in entries:
        try:
            regular = entry.is_file()  # follows symlinks; FIFOs, devices and folders are left out
        except OSError:
            regular = False
        if regular:
            _safe_model_name(entry.name, str(model_dir))
            files.append(Path(entry.path))
    if not files:
        raise BundleError(f"no model files in {model_dir}")
    if len(files) >= MAX_PARTS:
        raise BundleError(f"{model_dir} has {len(files)} files; a bundle holds at most {MAX_PARTS - 1}")
    return files


def _copy_hashed(src: Path, dest: Path) -> None:
    """Copy a model file into the private work directory: the bundle is written from copies
    nobody else can change between hashing and archiving."""
    with open_regular(src, "model file") as f, open(dest, "xb") as out:
        while True:
            try:
                block = f.read(CHUNK)
            except OSError as exc:
                raise BundleError(f"{src}: cannot read: {_reason(exc)}") from None
            if not block:
                break
            out.write(block)


def model_path_of(labels: Mapping[str, str]) -> str | None:
    """Where an image keeps model files, from tizi's own labels: a model image
    (scripts/build-model-image.sh) at /model, the reference image at /opt/tizi/model; None
    for an image that carries none (the llama.cpp server says "none: mount a GGUF ...")."""
    if labels.get(MODEL_FILE_LABEL):
        return MODEL_IMAGE_PATH
    described = labels.get(REFERENCE_MODEL_LABEL, "")
    if described and not described.startswith("none"):
        return DEFAULT_MODEL_PATH
    return None


def extract_model_files(
    image: str, dest: Path, docker_host: str | None = None, path: str = DEFAULT_MODEL_PATH
) -> list[Path]:
    """Copy the model directory out of the image (docker create + docker cp, never started).

    The copy goes through a file in `dest`'s parent, not memory: weights run to gigabytes.
    The command given to create is never run; it is there because an image without CMD
    (a model image is only files) cannot be created without one.
    """
    cid = _docker(["create", image, "tizi-bundle-never-started"], docker_host, text=True).stdout.strip()
    stream = dest.parent / f"{dest.name}.cp.tar"
    try:
        with open(stream, "xb") as f:
            _docker(["cp", f"{cid}:{path}/.", "-"], docker_host, timeout=None, stdout=f)
    finally:
        _docker(["rm", "-f", cid], docker_host)
    dest.mkdir(parents=True, exist_ok=True)
    files: list[Path] = []
    try:
        with tarfile.open(stream, mode="r:") as tar:
            for m in tar.getmembers():
                if not m.isfile():
                    continue
                name = PurePosixPath(m.name).name
                _safe_model_name(name, f"{image}:{path}")
                if dest / name in files or (dest / name).exists():
                    raise BundleError(f"two model files named {name!r} ({image}:{path} and another image)")
                src = tar.extractfile(m)
                if src is None:
                    raise BundleError(f"{image}:{path}/{name} cannot be read")
                with src, open(dest / name, "xb") as out:
                    shutil.copyfileobj(src, out, CHUNK)
                files.append(dest / name)
    except tarfile.TarError as exc:
        raise BundleError(f"docker cp of {image}:{path} returned an unreadable tar: {exc}") from None
    finally:
        stream.unlink()
    if not files:
        raise BundleError(f"no model files under {path} in {image}")
    return sorted(files)


def _gather_models(
    work: Path,
    facts: list[tuple[str, str, dict[str, str]]],
    sources: list[Path] | None,
    model_files: bool,
    docker_host: str | None,
) -> list[Path]:
    """The model files to bundle, copied into the private work directory: the bundle is
    written from copies nobody else can change between hashing and archiving."""
    dest = work / "model"
    if sources is not None:
        dest.mkdir()
        for src in sources:
            _copy_hashed(src, dest / src.name)
        return [dest / src.name for src in sources]
    files: list[Path] = []
    if model_files:
        for ref, _, labels in facts:
            path = model_path_of(labels)
            if path is not None:
                files += extract_model_files(ref, dest, docker_host, path)
    if len(files) >= MAX_PARTS:
        raise BundleError(f"the images hold {len(files)} model files; a bundle holds at most {MAX_PARTS - 1}")
    return sorted(files)
