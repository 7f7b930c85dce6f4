#!/usr/bin/env bash
# Build tizi's own stand-in for the pulumi-docker resource provider (provider/docker-standin,
# see its README.md) on machines that cannot build the upstream provider.
#
#   scripts/build-docker-standin.sh
#
# Idempotent: the binary lands in a folder keyed by a hash of the provider's sources,
#   ${TIZI_CACHE:-~/.cache/tizi}/toolchain/docker-standin-<hash>/bin/pulumi-resource-docker
# and a second run with unchanged sources only checks that it is there. Modules come from the
# Go module proxy only (GOMODCACHE/GOCACHE under ${TIZI_CACHE}/go/). Stdout: one line
# "[docker-standin] built|cached PATH", then, as the LAST line, the bin folder to put on PATH
# (bin="$(scripts/build-docker-standin.sh | tail -n 1)"); go's own output goes to stderr.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
SRC="$ROOT/provider/docker-standin"
CACHE="${TIZI_CACHE:-$HOME/.cache/tizi}"

log() { printf '[docker-standin] %s\n' "$*"; }

command -v go >/dev/null || { log "ERROR: no go on PATH (Go >= 1.26 is needed)" >&2; exit 1; }
[ -f "$SRC/go.mod" ] || { log "ERROR: no $SRC/go.mod" >&2; exit 1; }

# Content hash of the sources that make the binary (file names and contents, sorted).
hash="$(cd "$SRC" && find . -type f \( -name '*.go' -o -name go.mod -o -name go.sum \) ! -name '*_test.go' \
  -print0 | LC_ALL=C sort -z | xargs -0 sha256sum | sha256sum | cut -c1-16)"
dest="$CACHE/toolchain/docker-standin-$hash"
bin="$dest/bin/pulumi-resource-docker"

if [ -x "$bin" ] && [ -f "$dest/BUILD-INFO" ]; then
  log "cached $bin"
else
  export GOMODCACHE="$CACHE/go/mod" GOCACHE="$CACHE/go/build" CGO_ENABLED=0
  export GOFLAGS="${GOFLAGS:-} -mod=readonly"
  mkdir -p "$dest/bin"
  start=$(date +%s)
  tmp="$(mktemp "$dest/bin/.pulumi-resource-docker.XXXXXX")"
  trap 'rm -f "$tmp"' EXIT
  (cd "$SRC" && go build -trimpath -ldflags "-s -w" -o "$tmp" .) >&2
  chmod 0755 "$tmp"
  mv -f "$tmp" "$bin"
  trap - EXIT
  {
    echo "name: pulumi-resource-docker (tizi docker stand-in, reports version 4.0.0)"
    echo "source: provider/docker-standin (content hash $hash)"
    echo "go: $(go version)"
    echo "built: $(date -u +%Y-%m-%dT%H:%M:%SZ) in $(($(date +%s) - start)) s"
  } >"$dest/BUILD-INFO"
  log "built $bin"
fi
echo "$dest/bin"
