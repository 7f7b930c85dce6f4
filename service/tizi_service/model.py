"""The langid model: export it to a fast-loading file at build time, load it at start.

langid ships its 97-language naive Bayes model inside its source as base64(bz2(pickle)).
Decoding that takes 1.3-4 s on a small CPU, which alone would break the 2 s cold-start goal,
so the image build calls `export_model` once and the server loads the resulting .npz
(uncompressed numpy arrays, well under 0.2 s). Without that file (unit tests, a developer's
venv) `load_identifier` falls back to langid's embedded model: same weights, slower start.
"""

from __future__ import annotations

import argparse
import array
import base64
import bz2
import functools
import hashlib
import json
import os
import pickle
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from langid.langid import LanguageIdentifier

MODEL_FILE = "langid-1.1.6.npz"
META_FILE = "model.json"
DEFAULT_MODEL_DIR = "/opt/tizi/model"


@dataclass(frozen=True)
class LoadedModel:
    """A ready identifier plus what /metrics and /v1/models report about it."""

    identifier: LanguageIdentifier
    source: str  # the .npz path, or "embedded" for langid's own model string
    sha256: str
    load_seconds: float


@functools.cache
def _embedded_parts() -> tuple:
    """Decode once per process: tests and the export build several identifiers from it."""
    from langid import langid as langid_module  # the 2.5 MB module holding the model string

    raw = pickle.loads(bz2.decompress(base64.b64decode(langid_module.model)))
    return tuple(raw)


def export_model(out_dir: Path) -> Path:
    """Decode langid's embedded model once and write it as plain arrays plus metadata."""
    nb_ptc, nb_pc, nb_classes, tk_nextmove, tk_output = _embedded_parts()
    states = np.array(sorted(tk_output), dtype=np.int32)
    lengths = np.array([len(tk_output[s]) for s in states], dtype=np.int32)
    flat = [i for s in states for i in tk_output[int(s)]]
    out_dir.mkdir(parents=True, exist_ok=True)
    path = out_dir / MODEL_FILE
    with open(path, "wb") as f:
        np.savez(
            f,
            nb_ptc=np.asarray(nb_ptc, dtype=np.float32).reshape(-1, len(nb_pc)),
            nb_pc=np.asarray(nb_pc, dtype=np.float32),
            nb_classes=np.array(nb_classes),
            tk_nextmove=np.asarray(tk_nextmove, dtype=np.uint16),
            out_states=states,
            out_lengths=lengths,
            out_indices=np.asarray(flat, dtype=np.int32),
        )
    meta = {
        "name": "langid.py",
        "version": "1.1.6",
        "licence": "BSD-2-Clause (langid.py by Marco Lui and Timothy Baldwin)",
        "languages": sorted(str(c) for c in nb_classes),
        "file": MODEL_FILE,
        "sha256": sha256_file(path),
    }
    (out_dir / META_FILE).write_text(json.dumps(meta, indent=2) + "\n")
    return path


def sha256_file(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def _from_npz(path: Path) -> LanguageIdentifier:
    with np.load(path, allow_pickle=False) as z:
        nb_ptc = z["nb_ptc"]
        nb_pc = z["nb_pc"]
        classes = [str(c) for c in z["nb_classes"]]
        # array.array indexing returns plain ints, which langid's per-byte loop wants;
        # a list of 2.3 M ints would cost ~80 MB of resident memory instead of 4.6 MB.
        nextmove = array.array("H", z["tk_nextmove"].tobytes())
        states, lengths, flat = z["out_states"], z["out_lengths"], z["out_indices"].tolist()
    output: dict[int, tuple[int, ...]] = {}
    pos = 0
    for state, n in zip(states.tolist(), lengths.tolist(), strict=True):
        output[state] = tuple(flat[pos : pos + n])
        pos += n
    return LanguageIdentifier(nb_ptc, nb_pc, nb_ptc.shape[0], classes, nextmove, output, norm_probs=True)


def model_directory(model_dir: str | None = None) -> Path:
    """Where to load from: the model cache volume ($TIZI_MODEL_CACHE_DIR) when it holds a
    model, so an offline bundle can deliver newer weights without a new image; else
    ``model_dir``, else the folder baked into the image ($TIZI_MODEL_DIR)."""
    cache = os.environ.get("TIZI_MODEL_CACHE_DIR")
    if cache and (Path(cache) / MODEL_FILE).is_file():
        return Path(cache)
    return Path(model_dir or os.environ.get("TIZI_MODEL_DIR", DEFAULT_MODEL_DIR))


def load_identifier(model_dir: str | None = None) -> LoadedModel:
    """Load the exported model (see ``model_directory``), else langid's embedded one."""
    start = time.monotonic()
    directory = model_directory(model_dir)
    path = directory / MODEL_FILE
    if path.is_file():
        identifier = _from_npz(path)
        meta_path = directory / META_FILE
        digest = json.loads(meta_path.read_text())["sha256"] if meta_path.is_file() else sha256_file(path)
        return LoadedModel(identifier, str(path), digest, time.monotonic() - start)
    nb_ptc, nb_pc, nb_classes, tk_nextmove, tk_output = _embedded_parts()
    pc = np.array(nb_pc)
    ptc = np.array(nb_ptc).reshape(-1, len(pc))
    identifier = LanguageIdentifier(
        ptc, pc, ptc.shape[0], nb_classes, tk_nextmove, tk_output, norm_probs=True
    )
    return LoadedModel(identifier, "embedded", "embedded", time.monotonic() - start)


def main() -> None:
    parser = argparse.ArgumentParser(description="Export langid's model for fast loading.")
    parser.add_argument("out_dir", type=Path)
    args = parser.parse_args()
    path = export_model(args.out_dir)
    print(f"wrote {path} ({path.stat().st_size} bytes)")


if __name__ == "__main__":
    main()
