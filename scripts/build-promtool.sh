#!/usr/bin/env bash
# scripts/build-promtool.sh — build Prometheus's promtool (rule unit tests: `promtool test rules`,
# `promtool check rules|config`) from the Go module proxy, as scripts/cluster/serverless-build.sh
# builds Knative and Traefik, and print its path as the last line of stdout.
#
#   scripts/build-promtool.sh [VERSION...]     # Go-module versions of github.com/prometheus/prometheus
#   PROMTOOL="$(scripts/build-promtool.sh)"    # the binary's path (logs go to stderr)
#
# The versions are tried in order and the first one that is built (or builds) wins: by default
# ${TIZI_PROMTOOL_VERSION} alone if set, else v0.316.0 (Prometheus 3.16.0) down to v0.313.2. Prometheus 3.x
# is published to the proxy as v0.3MM.P (3.MM.P); `go install …@v3.x` does not exist.
# Sourcing the script instead only defines the functions (build_promtool VERSION...), with no `set` and
# no exports: the caller then sets the Go environment (go_cache_env, GOTOOLCHAIN=local, GOFLAGS=-buildvcs=false).
#
# ${TIZI_CACHE:-$HOME/.cache/tizi}/promtool/<version>/:
#   promtool       CGO_ENABLED=0, -trimpath, -s -w, -tags netgo; version ldflags on
#                  github.com/prometheus/common/version (Version=3.MM.P from the module's VERSION file,
#                  Revision=<module version> (module zips carry no git revision), Branch=HEAD, fixed user/date)
#   BUILD-INFO     one line: version, prometheus version, go version, seconds (cold build), per step, date
#   .complete      written last; with it the version is taken at once (a second run: well under a second)
#   .failed        why a build failed (first line) and where its log is; such a version is skipped next
#                  time unless TIZI_RETRY_FAILED=1
#   src/           throwaway module tizi.local/promtoolbuild (go.mod copies upstream's go/godebug lines and
#                  its versioned replace/exclude lines, none as of v0.316.0), go.sum, stub main.go
# Go output of each build goes to ${CACHE}/logs/promtool-<version>.log.

if ! declare -F go_cache_env >/dev/null; then
  LOG_TAG="${LOG_TAG:-build-promtool}" LOG_ELAPSED="${LOG_ELAPSED:-1}"
  # shellcheck source=lib/common.sh
  . "$(dirname "${BASH_SOURCE[0]}")/lib/common.sh"
fi

PTB_MODULE=github.com/prometheus/prometheus
PTB_PKG=github.com/prometheus/prometheus/cmd/promtool
PTB_VERSIONS=(v0.316.0 v0.315.1 v0.315.0 v0.314.0 v0.313.5 v0.313.4 v0.313.3 v0.313.2)
PTB_BUILD_DATE="19700101-00:00:00"   # fixed, in promu's format: reproducible binaries

# ptb_gomod UPSTREAM_GO_MOD VERSION — the throwaway go.mod: upstream's `go` and `godebug` lines, its
# versioned `replace` lines (local-path replaces dropped) and its `exclude` lines, which Go ignores in a
# dependency, then `require MODULE VERSION`.
ptb_gomod() {
  local up="$1" ver="$2" repl excl
  repl="$(awk '
    /^replace[ \t]*\(/ { inr = 1; next }
    inr && /^\)/ { inr = 0; next }
    /^replace[ \t]+[^( \t]/ { sub(/^replace[ \t]+/, ""); print; next }
    inr { print }' "$up" | sed 's#[ \t]*//.*##; s/^[ \t]*//' | awk 'NF && $0 ~ /=>/ { split($0, a, "=>"); n = split(a[2], r, " "); if (n == 2 && r[1] !~ /^\.|^\//) print }')"
  excl="$(awk '
    /^exclude[ \t]*\(/ { ine = 1; next }
    ine && /^\)/ { ine = 0; next }
    /^exclude[ \t]+[^( \t]/ { sub(/^exclude[ \t]+/, ""); print; next }
    ine { print }' "$up" | sed 's#[ \t]*//.*##; s/^[ \t]*//' | awk 'NF')"
  echo "module tizi.local/promtoolbuild"
  echo
  grep -E '^go [0-9]' "$up"
  grep -E '^godebug ' "$up" || true
  echo
  echo "require ${PTB_MODULE} ${ver}"
  if [ -n "$repl" ]; then printf '\nreplace (\n\t%s\n)\n' "${repl//$'\n'/$'\n\t'}"; fi
  if [ -n "$excl" ]; then printf '\nexclude (\n\t%s\n)\n' "${excl//$'\n'/$'\n\t'}"; fi
}

# ptb_fail DIR LOG T0 WHAT — record why a version failed (DIR/.failed); the caller then returns 1
ptb_fail() {
  local d="$1" logf="$2" t0="$3" what="$4" why
  why="$(grep -E '[Ee]rror|cannot|undefined|not available|no required|invalid|requires go|40[34] |410 ' "$logf" | tail -n 1 || true)"
  tail -n 25 "$logf" >&2 || true
  printf '%s: %s\nafter %ss; log: %s\n' "$what" "${why:-see log}" "$(( $(date +%s) - t0 ))" "$logf" > "${d}/.failed"
  log "promtool $(basename "$d"): ${what} FAILED: ${why:-see ${logf}}"
}

# ptb_build VERSION — build promtool VERSION into ${CACHE}/promtool/VERSION/promtool (skipped when
# .complete exists); returns 1 (and writes .failed) if it cannot be downloaded or built
ptb_build() {
  local ver="$1" d="${CACHE}/promtool/$1"
  local src="${d}/src" logf="${CACHE}/logs/promtool-${ver}.log"
  [ -f "${d}/.complete" ] && [ -x "${d}/promtool" ] && return 0
  command -v go >/dev/null || die "no go on PATH (Go >= 1.26 is needed)"
  mkdir -p "$src" "${CACHE}/logs" "$GOMODCACHE" "$GOCACHE"
  rm -f "${d}/.failed"
  local t0 s per=() gover up mdir pver ld
  gover="$(go env GOVERSION)"
  t0=$(date +%s)
  echo "=== $(date -u +%FT%TZ) promtool ${ver} (${gover})" >> "$logf"
  local j; j="$(cd /tmp && go mod download -json "${PTB_MODULE}@${ver}" 2>>"$logf")" || true
  up="$(sed -n 's/.*"GoMod": "\(.*\)".*/\1/p' <<<"$j")"
  mdir="$(sed -n 's/.*"Dir": "\(.*\)".*/\1/p' <<<"$j")"
  if [ ! -f "$up" ] || [ ! -d "$mdir" ]; then
    echo "cannot download ${PTB_MODULE}@${ver}: $(sed -n 's/.*"Error": "\(.*\)".*/\1/p' <<<"$j")" >> "$logf"
    ptb_fail "$d" "$logf" "$t0" "download"; return 1
  fi
  # Prometheus's release version: the module's VERSION file, else v0.3MM.P -> 3.MM.P
  pver="$(tr -d ' \n' 2>/dev/null < "${mdir}/VERSION")" || pver=""
  if [ -z "$pver" ]; then
    local mm="${ver#v0.}"; pver="$(( ${mm%%.*} / 100 )).$(( ${mm%%.*} % 100 )).${mm#*.}"
  fi
  if [ ! -f "${src}/.ready" ]; then
    log "promtool ${ver} (Prometheus ${pver}): preparing ${src}"
    ptb_gomod "$up" "$ver" > "${src}/go.mod"
    printf 'package main\n\nfunc main() {}\n' > "${src}/main.go"
    (cd "$src" && go get "${PTB_PKG}@${ver}") >> "$logf" 2>&1 || { ptb_fail "$d" "$logf" "$t0" "go get"; return 1; }
    touch "${src}/.ready"
  fi
  per+=("prep=$(( $(date +%s) - t0 ))")
  local x=github.com/prometheus/common/version
  ld="-s -w -X ${x}.Version=${pver} -X ${x}.Revision=${ver} -X ${x}.Branch=HEAD -X ${x}.BuildUser=tizi -X ${x}.BuildDate=${PTB_BUILD_DATE}"
  s=$(date +%s)
  log "promtool ${ver}: building ${PTB_PKG} (${gover}; log: ${logf})"
  (cd "$src" && CGO_ENABLED=0 go build -trimpath -tags netgo -ldflags "$ld" -o "${d}/promtool.tmp" "$PTB_PKG") >> "$logf" 2>&1 \
    || { rm -f "${d}/promtool.tmp"; ptb_fail "$d" "$logf" "$t0" "go build"; return 1; }
  per+=("build=$(( $(date +%s) - s ))")
  # it must run: `promtool --version` prints "promtool, version 3.MM.P (branch: …)"
  if ! timeout 20 "${d}/promtool.tmp" --version >> "$logf" 2>&1; then
    rm -f "${d}/promtool.tmp"; ptb_fail "$d" "$logf" "$t0" "promtool --version"; return 1
  fi
  mv "${d}/promtool.tmp" "${d}/promtool"
  echo "promtool ${ver} prometheus-${pver} ${gover} $(( $(date +%s) - t0 ))s [${per[*]}] ${PTB_MODULE}@${ver} built $(date -u +%FT%TZ)" > "${d}/BUILD-INFO"
  touch "${d}/.complete"
  log "promtool ${ver}: built in $(( $(date +%s) - t0 ))s, $(du -h "${d}/promtool" | cut -f1)"
}

# build_promtool [VERSION...] — the first VERSION that is built or builds; prints the binary's path
build_promtool() {
  local vs=("$@") v d
  if [ ${#vs[@]} -eq 0 ]; then
    if [ -n "${TIZI_PROMTOOL_VERSION:-}" ]; then vs=("$TIZI_PROMTOOL_VERSION"); else vs=("${PTB_VERSIONS[@]}"); fi
  fi
  for v in "${vs[@]}"; do
    d="${CACHE}/promtool/${v}"
    if [ -f "${d}/.complete" ] && [ -x "${d}/promtool" ]; then
      log "promtool ${v}: cached ($(cut -d' ' -f1-5 "${d}/BUILD-INFO" 2>/dev/null))"
      echo "${d}/promtool"; return 0
    fi
    if [ -f "${d}/.failed" ] && [ "${TIZI_RETRY_FAILED:-0}" != 1 ]; then
      log "promtool ${v}: skipped, failed before ($(head -n1 "${d}/.failed")); TIZI_RETRY_FAILED=1 retries"
      continue
    fi
    if ptb_build "$v"; then echo "${d}/promtool"; return 0; fi
  done
  die "no promtool version could be built (tried: ${vs[*]}; see ${CACHE}/promtool/*/.failed)"
}

if [ "${BASH_SOURCE[0]}" = "$0" ]; then
  set -euo pipefail
  go_cache_env
  export GOTOOLCHAIN=local GOFLAGS="-buildvcs=false"
  build_promtool "$@"; exit $?
fi
