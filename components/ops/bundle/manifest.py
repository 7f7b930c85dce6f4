"""manifest.json: the names of a bundle's members, the manifest's schema and its strict checks.

manifest.json holds the format, when the bundle was made, the images (ref and id of each),
the service spec it was made for, and the path, kind, size and sha256 of every part; for
image.tar.zst also the size and sha256 of image.tar once decompressed. It is read as strict
JSON and must be of exactly that shape (`_parse_manifest`); the error names the field that
is not. It is parsed only after its signature has checked out (verify.py), so the JSON
parser only ever sees signed bytes.
"""

from __future__ import annotations

import json
import math
import re
from typing import Any, NoReturn

from components.ops.bundle.errors import BundleError, _show

FORMAT = "tizi-bundle/2"
#: Formats this tizi no longer reads, and why: said instead of a bare "unknown format".
OLD_FORMATS = {"tizi-bundle/1": "an unsigned bundle from an older tizi: create it again"}
MANIFEST = "manifest.json"
SIGNATURE = MANIFEST + ".minisig"
IMAGE_PART = "image.tar.zst"
MODEL_PREFIX = "model/"
MODEL_META = MODEL_PREFIX + "model.json"
#: A manifest is a few KiB; the cap bounds what is read before the signature is checked.
MAX_MANIFEST = 1 << 20
#: One image part and the files of a model directory; more is not a bundle tizi made.
MAX_PARTS = 256
#: A site's server and model images, and a few more; a bundle is loaded by one docker load.
MAX_IMAGES = 16
#: 1 TiB: far above any image, low enough that sizes stay plain integers everywhere.
MAX_PART_SIZE = 1 << 40
MAX_MODEL_META = 1 << 20
MANIFEST_FIELDS = frozenset({"format", "created", "images", "spec", "parts"})
PART_FIELDS = frozenset({"path", "kind", "size", "sha256"})
IMAGE_PART_FIELDS = PART_FIELDS | {"tar_size", "tar_sha256"}

_SAFE_NAME = re.compile(r"[A-Za-z0-9_][A-Za-z0-9._+-]{0,127}")
_SHA256 = re.compile(r"[0-9a-f]{64}")
_IMAGE_ID = re.compile(r"sha256:[0-9a-f]{64}")
_IMAGE_REF = re.compile(r"[A-Za-z0-9][A-Za-z0-9._/:@-]{0,511}")


def _loads(raw: bytes, what: str) -> Any:
    """Strict JSON: UTF-8, no duplicate keys (two parsers could read two different digests),
    no NaN or infinities, bounded nesting; every failure a one-line BundleError."""

    def pairs(items: list[tuple[str, Any]]) -> dict[str, Any]:
        out: dict[str, Any] = {}
        for key, value in items:
            if key in out:
                raise BundleError(f"{what} sets the key {_show(key)} twice")
            out[key] = value
        return out

    def number(text: str) -> float:
        value = float(text)
        if not math.isfinite(value):
            raise BundleError(f"{what} holds a number out of range: {_show(text)}")
        return value

    def constant(text: str) -> NoReturn:
        raise BundleError(f"{what} holds {text}, which is not JSON")

    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise BundleError(f"{what} is not valid UTF-8 (byte {exc.start})") from None
    try:
        return json.loads(text, object_pairs_hook=pairs, parse_float=number, parse_constant=constant)
    except RecursionError:
        raise BundleError(f"{what} is nested too deeply") from None
    except ValueError as exc:
        raise BundleError(f"{what} is not valid JSON: {exc}") from None


def _field_error(field: str, why: str) -> BundleError:
    return BundleError(f"manifest.json: {field} {why}")


def _check_size(where: str, size: Any) -> None:
    if not isinstance(size, int) or isinstance(size, bool) or not 0 <= size <= MAX_PART_SIZE:
        raise _field_error(where, f"must be an integer from 0 to {MAX_PART_SIZE}, not {_show(size)}")


def _check_digest(where: str, digest: Any) -> None:
    if not isinstance(digest, str) or not _SHA256.fullmatch(digest):
        raise _field_error(where, f"must be 64 lowercase hex digits, not {_show(digest)}")


def _check_part(i: int, part: Any) -> None:
    where = f"parts[{i}]"
    if not isinstance(part, dict):
        raise _field_error(where, "must be an object")
    path = part.get("path")
    if "path" not in part:
        raise _field_error(f"{where}.path", "is missing")
    if not isinstance(path, str):
        raise _field_error(f"{where}.path", "must be a string")
    if path == IMAGE_PART:
        want, fields = "image", IMAGE_PART_FIELDS
    elif path.startswith(MODEL_PREFIX) and _SAFE_NAME.fullmatch(path[len(MODEL_PREFIX) :]):
        want, fields = "model", PART_FIELDS
    else:
        raise _field_error(
            f"{where}.path", f"{_show(path)} is neither {IMAGE_PART} nor model/<file> with a safe file name"
        )
    for key in sorted(fields - set(part)):
        raise _field_error(f"{where}.{key}", "is missing")
    for key in sorted(set(part) - fields):
        raise _field_error(
            f"{where}.{_show(key)}", f"is not a field of {'an image' if want == 'image' else 'a model'} part"
        )
    if part["kind"] != want:
        raise _field_error(f"{where}.kind", f"must be {want!r} for {path}, not {_show(part['kind'])}")
    _check_size(f"{where}.size", part["size"])
    _check_digest(f"{where}.sha256", part["sha256"])
    if want == "image":
        _check_size(f"{where}.tar_size", part["tar_size"])
        _check_digest(f"{where}.tar_sha256", part["tar_sha256"])


def _check_images(images: Any) -> None:
    """The images the image part holds: refs the engine will be asked about, ids it must report."""
    if not isinstance(images, list):
        raise _field_error("images", "must be a list")
    if not 1 <= len(images) <= MAX_IMAGES:
        raise _field_error("images", f"has {len(images)} entries; a bundle has 1 to {MAX_IMAGES}")
    refs: set[str] = set()
    for i, image in enumerate(images):
        where = f"images[{i}]"
        if not isinstance(image, dict):
            raise _field_error(where, "must be an object with ref and id")
        for key in sorted(set(image) ^ {"ref", "id"}):
            raise _field_error(
                f"{where}.{_show(key)}", "is missing" if key in ("ref", "id") else "is not a field"
            )
        if not isinstance(image["ref"], str) or not _IMAGE_REF.fullmatch(image["ref"]):
            raise _field_error(f"{where}.ref", f"is not an image reference: {_show(image['ref'])}")
        if not isinstance(image["id"], str) or not _IMAGE_ID.fullmatch(image["id"]):
            raise _field_error(f"{where}.id", f"must be sha256: and 64 hex digits, not {_show(image['id'])}")
        if image["ref"] in refs:
            raise _field_error(f"{where}.ref", f"{image['ref']!r} is listed twice")
        refs.add(image["ref"])


def _parse_manifest(raw: bytes) -> dict[str, Any]:
    """The manifest, of exactly the expected shape; the error names the field that is not."""
    manifest = _loads(raw, "manifest.json")
    if not isinstance(manifest, dict):
        raise BundleError("manifest.json is not a JSON object: not a tizi bundle")
    if "format" not in manifest:
        raise _field_error("field 'format'", "is missing")
    fmt = manifest["format"]
    if fmt != FORMAT:
        why = OLD_FORMATS.get(fmt) if isinstance(fmt, str) else None
        raise _field_error("format", f"is {_show(fmt)}, " + (why or f"this tizi reads {FORMAT}"))
    for key in sorted(set(manifest) - MANIFEST_FIELDS):
        raise _field_error(f"field {_show(key)}", f"is not part of {FORMAT}")
    for key in ("images", "spec", "parts"):
        if key not in manifest:
            raise _field_error(f"field {key!r}", "is missing")
    created = manifest.get("created", "")
    if not isinstance(created, str) or len(created) > 64 or not created.isprintable():
        raise _field_error("created", f"must be a short timestamp string, not {_show(created)}")
    _check_images(manifest["images"])
    if not isinstance(manifest["spec"], dict):
        raise _field_error("spec", "must be an object")
    parts = manifest["parts"]
    if not isinstance(parts, list):
        raise _field_error("parts", "must be a list")
    if not 1 <= len(parts) <= MAX_PARTS:
        raise _field_error("parts", f"has {len(parts)} entries; a bundle has 1 to {MAX_PARTS}")
    seen: set[str] = set()
    for i, part in enumerate(parts):
        _check_part(i, part)
        if part["path"] in seen:
            raise _field_error(f"parts[{i}].path", f"{part['path']!r} is listed twice")
        seen.add(part["path"])
    if IMAGE_PART not in seen:
        raise _field_error("parts", f"does not list {IMAGE_PART}")
    return manifest


def _check_model_metadata(manifest: dict[str, Any], raw: bytes | None) -> None:
    """If the model directory carries model.json, its digest must match the model file."""
    if raw is None:
        return
    meta = _loads(raw, MODEL_META)
    if not isinstance(meta, dict):
        raise BundleError(f"{MODEL_META} is not a JSON object")
    parts = {p["path"]: p for p in manifest["parts"]}
    name = meta.get("file")
    model = parts.get(MODEL_PREFIX + name) if isinstance(name, str) else None
    if model is None:
        raise BundleError(f"{MODEL_META} names the model file {_show(name)}, which is not in the bundle")
    if model["sha256"] != meta.get("sha256"):
        raise BundleError(f"{MODEL_META}: its sha256 does not match {model['path']}")
