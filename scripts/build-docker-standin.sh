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

LOG_TAG=docker-standin
# shellcheck source=lib/common.sh
. "$(dirname "${BASH_SOURCE[0]}")/lib/common.sh"   # ROOT, CACHE, log, die, go_cache_env, hash_files, short_hash
SRC="$ROOT/provider/docker-standin"

command -v go >/dev/null || die "no go on PATH (Go >= 1.26 is needed)"
[ -f "$SRC/go.mod" ] || die "no $SRC/go.mod"

# Content hash of the sources that make the binary (file names and contents, sorted).
hash="$(cd "$SRC" && find . -type f \( -name '*.go' -o -name go.mod -o -name go.sum \) ! -name '*_test.go' \
  -print0 | hash_files | short_hash)"
dest="$CACHE/toolchain/docker-standin-$hash"
bin="$dest/bin/pulumi-resource-docker"

if [ -x "$bin" ] && [ -f "$dest/BUILD-INFO" ]; then
  log "cached $bin" 2>&1   # this line goes to stdout (see above)
else
  go_cache_env
  export CGO_ENABLED=0
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
  log "built $bin" 2>&1
fi
echo "$dest/bin"
