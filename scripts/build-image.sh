#!/usr/bin/env bash
# Build tizi's inference-service image with no container registry.
#
#   scripts/build-image.sh            build (or skip) and print the image's tags and size
#   scripts/build-image.sh --base     only make sure local/debian:bookworm exists
#   scripts/build-image.sh --hash     print the content hash and exit
#
# 1. local/debian:bookworm comes from `debootstrap --variant=minbase` + `docker import`; the
#    rootfs tarball is cached under ${TIZI_CACHE:-~/.cache/tizi}/base/ so it is made once.
# 2. service/Dockerfile (multi-stage) is built with the host's extra CA certificates copied into
#    service/build-ca/ for the builder stage's pip only; they are removed again afterwards and
#    never reach the final stage or git (.gitignore lists service/build-ca/).
# 3. The content hash covers the Dockerfile, the service sources and the base image id; the
#    image is tagged tizi/inference-service:<hash> and :0.1.0 and labelled with the hash. When
#    an image with that label already exists the build is skipped.
set -euo pipefail

LOG_TAG=build-image
# shellcheck source=lib/common.sh
. "$(dirname "${BASH_SOURCE[0]}")/lib/common.sh"   # ROOT, CACHE, log, apt_install, hash_files, short_hash

BASE_TAG="local/debian:bookworm"
BASE_TAR="$CACHE/base/debian-bookworm-minbase.tar"
MIRROR="${TIZI_DEBIAN_MIRROR:-http://deb.debian.org/debian}"
IMAGE="${TIZI_IMAGE:-tizi/inference-service}"
VERSION="0.1.0"
DOCKER="${DOCKER:-docker}"

ensure_base() {
  if "$DOCKER" image inspect "$BASE_TAG" >/dev/null 2>&1; then return 0; fi
  if [ ! -s "$BASE_TAR" ]; then
    command -v debootstrap >/dev/null || {
      log "installing debootstrap"
      apt_install debootstrap
    }
    local rootfs
    rootfs="$(mktemp -d /tmp/tizi-rootfs.XXXXXX)"
    log "debootstrap --variant=minbase bookworm (about 30 s)"
    debootstrap --variant=minbase bookworm "$rootfs" "$MIRROR" >&2
    # Slim like Debian's -slim images: no docs, man pages or translations, now or on later
    # apt installs, and no apt lists or package cache (each a few tens of MB).
    mkdir -p "$rootfs/etc/dpkg/dpkg.cfg.d"
    cat >"$rootfs/etc/dpkg/dpkg.cfg.d/01-tizi-slim" <<'EOF'
path-exclude /usr/share/doc/*
path-include /usr/share/doc/*/copyright
path-exclude /usr/share/man/*
path-exclude /usr/share/info/*
path-exclude /usr/share/locale/*
path-exclude /usr/share/lintian/*
EOF
    printf 'APT::Install-Recommends "false";\nAPT::Install-Suggests "false";\n' \
      >"$rootfs/etc/apt/apt.conf.d/01-tizi-norecommends"
    find "$rootfs/usr/share/doc" -mindepth 1 -not -name copyright -not -type d -delete || true
    rm -rf "$rootfs"/usr/share/man/* "$rootfs"/usr/share/info/* "$rootfs"/usr/share/locale/* \
      "$rootfs"/var/cache/apt/*.bin "$rootfs"/var/cache/apt/archives/*.deb \
      "$rootfs"/var/lib/apt/lists/* "$rootfs"/var/log/*.log "$rootfs"/var/log/apt/*
    mkdir -p "$CACHE/base"
    tar --numeric-owner -C "$rootfs" -cf "$BASE_TAR.tmp" .
    mv "$BASE_TAR.tmp" "$BASE_TAR"
    rm -rf "$rootfs"
  fi
  log "docker import $BASE_TAR -> $BASE_TAG"
  "$DOCKER" import "$BASE_TAR" "$BASE_TAG" >/dev/null
}

content_hash() {
  # Sources that go into the build context, in a stable order, plus the base image id.
  local base_id
  base_id="$("$DOCKER" image inspect --format '{{.Id}}' "$BASE_TAG")"
  {
    echo "$base_id"
    cd "$ROOT"
    # Only what the Dockerfile copies: README or sample edits do not force a rebuild.
    find service/Dockerfile service/.dockerignore service/requirements.txt service/tizi_service \
      -type f ! -path '*/__pycache__/*' ! -name '*.pyc' -print0 | hash_files
  } | short_hash
}

print_result() { # $1 = tag
  local bytes
  bytes="$("$DOCKER" image inspect --format '{{.Size}}' "$1")"
  echo "image: $IMAGE:$VERSION = $1"
  echo "size: $bytes bytes ($((bytes / 1000000)) MB)"
}

build() {
  local hash tag
  hash="$(content_hash)"
  tag="$IMAGE:$hash"
  if [ "$("$DOCKER" image inspect --format '{{index .Config.Labels "org.tizi.content-hash"}}' \
      "$tag" 2>/dev/null || true)" = "$hash" ]; then
    log "content hash $hash unchanged: skipping the build"
    "$DOCKER" tag "$tag" "$IMAGE:$VERSION"
    print_result "$tag"
    return 0
  fi
  local ca_dir="$ROOT/service/build-ca"
  rm -rf "$ca_dir"
  mkdir -p "$ca_dir"
  trap 'rm -rf "$ca_dir"' EXIT
  cp /usr/local/share/ca-certificates/*.crt "$ca_dir/" 2>/dev/null || true
  log "building $tag"
  # The 20.10 CLI in /usr/bin drives BuildKit (the 28.x CLI first in PATH has no buildx).
  DOCKER_BUILDKIT=1 /usr/bin/docker build --progress=plain \
    --build-arg "CONTENT_HASH=$hash" --label "org.tizi.content-hash=$hash" \
    -t "$tag" -t "$IMAGE:$VERSION" -f "$ROOT/service/Dockerfile" "$ROOT/service" >&2
  rm -rf "$ca_dir"
  trap - EXIT
  print_result "$tag"
}

case "${1:-}" in
  --base) ensure_base ;;
  --hash) ensure_base; content_hash ;;
  "") ensure_base; build ;;
  *) echo "usage: $0 [--base|--hash]" >&2; exit 2 ;;
esac
