#!/usr/bin/env bash
# scripts/cluster/serverless-build.sh — build (never deploy) the pieces for real Knative on the
# scripts/cluster.sh cluster: Knative Serving's five binaries, metrics-server and Traefik (the Knative
# ingress), each from the Go module proxy, plus their manifests copied out of the module zips.
#
#   scripts/cluster/serverless-build.sh [all|knative|metrics-server|traefik]...   # default: all, in that order
#
# Standalone: unlike the other files of scripts/cluster/ it is run, not sourced by cluster.sh (nothing
# calls it yet). It sources scripts/lib/common.sh itself. Sourcing it instead only defines the
# functions (serverless_build PART...), with no `set` and no exports: the caller then sets the Go
# environment as cluster.sh does (go_cache_env, GOTOOLCHAIN=local, GOFLAGS=-buildvcs=false).
#
# Each part lands in ${TIZI_CACHE:-$HOME/.cache/tizi}/<part>/<version>/:
#   src/                    throwaway module tizi.local/<part>build (go.mod copies upstream's replace/exclude lines)
#   bin/<binary>...         CGO_ENABLED=0, -trimpath, -s -w, version ldflags
#   bin/BUILD-INFO          one line: part, version, go version, seconds (cold build), per-binary seconds, date
#   bin/.complete           written last; with it the part is skipped (a second run takes seconds)
#   config/ (+ .complete)   manifests copied out of the module zips (nothing applied)
# Go output of each build goes to ${CACHE}/logs/<part>-<version>.log.
# Versions: TIZI_KSERVING_VERSION (v0.42.2), TIZI_METRICS_SERVER_VERSION (v0.8.0), TIZI_TRAEFIK_VERSION (v3.6.12).

if ! declare -F go_cache_env >/dev/null; then
  LOG_TAG="${LOG_TAG:-serverless-build}" LOG_ELAPSED="${LOG_ELAPSED:-1}"
  # shellcheck source=../lib/common.sh
  . "$(dirname "${BASH_SOURCE[0]}")/../lib/common.sh"
fi

SLB_KSERVING_VERSION="${TIZI_KSERVING_VERSION:-v0.42.2}"
SLB_METRICS_SERVER_VERSION="${TIZI_METRICS_SERVER_VERSION:-v0.8.0}"
SLB_TRAEFIK_VERSION="${TIZI_TRAEFIK_VERSION:-v3.6.12}"
SLB_BUILD_DATE="1970-01-01T00:00:00Z"   # fixed: reproducible binaries, as in build.sh

# slb_mod_dir MODULE@VERSION — the module's unpacked directory in GOMODCACHE (downloaded if needed);
# prints nothing (and fails) if the proxy does not serve it
slb_mod_dir() { local d; d="$(cd /tmp && go_mod_field "$1" Dir)"; [ -n "$d" ] && [ -d "$d" ] && echo "$d"; }

# slb_gomod UPSTREAM_GO_MOD NAME MODULE VERSION — a throwaway go.mod requiring MODULE@VERSION, with the
# upstream `go` and `godebug` lines, its versioned `replace` lines (local-path replaces dropped) and
# its `exclude` lines: a dependency's replace/exclude are ignored by Go, so `go install mod@v` and a
# plain `go get` would build against different dependencies than upstream does.
slb_gomod() {
  local up="$1" name="$2" mod="$3" ver="$4" repl excl
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
  echo "module tizi.local/${name}build"
  echo
  grep -E '^go [0-9]' "$up"
  grep -E '^godebug ' "$up" || true
  echo
  echo "require ${mod} ${ver}"
  if [ -n "$repl" ]; then printf '\nreplace (\n\t%s\n)\n' "${repl//$'\n'/$'\n\t'}"; fi
  if [ -n "$excl" ]; then printf '\nexclude (\n\t%s\n)\n' "${excl//$'\n'/$'\n\t'}"; fi
}

# slb_build PART VERSION MODULE LDFLAGS PKG... — build each PKG (a main package of MODULE@VERSION)
# into ${CACHE}/PART/VERSION/bin/<last path element>; skipped when bin/.complete exists.
slb_build() {
  local part="$1" ver="$2" mod="$3" ld="$4"; shift 4
  local d="${CACHE}/${part}/${ver}" p
  local bin="${d}/bin" src="${d}/src" logf="${CACHE}/logs/${part}-${ver}.log"
  if [ -f "${bin}/.complete" ]; then
    log "${part} ${ver}: cached ($(cut -d' ' -f1-4 "${bin}/BUILD-INFO"))"
    return 0
  fi
  mkdir -p "$bin" "$src" "${CACHE}/logs" "$GOMODCACHE" "$GOCACHE"
  local t0 s per=() gover
  gover="$(go env GOVERSION)"
  t0=$(date +%s)
  echo "=== $(date -u +%FT%TZ) ${part} ${ver} (${gover})" >> "$logf"
  if [ ! -f "${src}/.ready" ]; then
    log "${part} ${ver}: preparing ${src}"
    local up; up="$(cd /tmp && go_mod_field "${mod}@${ver}" GoMod)" || up=""
    [ -f "$up" ] || die "cannot download ${mod}@${ver} (not served by the Go module proxy?)"
    slb_gomod "$up" "$part" "$mod" "$ver" > "${src}/go.mod"
    printf 'package main\n\nfunc main() {}\n' > "${src}/main.go"
    local gets=()
    for p in "$@"; do gets+=("${p}@${ver}"); done
    (cd "$src" && go get "${gets[@]}") >> "$logf" 2>&1 || { tail -20 "$logf" >&2; die "go get failed for ${part} ${ver} (log: ${logf})"; }
    touch "${src}/.ready"
  fi
  per+=("prep=$(( $(date +%s) - t0 ))")
  for p in "$@"; do
    local b="${p##*/}"
    s=$(date +%s)
    log "${part} ${ver}: building ${b} (${p}, ${gover})"
    (cd "$src" && CGO_ENABLED=0 go build -trimpath -ldflags "$ld" -o "${bin}/${b}.tmp" "$p") >> "$logf" 2>&1 \
      || { tail -30 "$logf" >&2; die "build of ${p} failed (log: ${logf})"; }
    mv "${bin}/${b}.tmp" "${bin}/${b}"
    per+=("${b}=$(( $(date +%s) - s ))")
    log "${part} ${ver}: built ${b} in $(( $(date +%s) - s ))s, $(du -h "${bin}/${b}" | cut -f1)"
  done
  echo "${part} ${ver} ${gover} $(( $(date +%s) - t0 ))s [${per[*]}] ${mod}@${ver} built $(date -u +%FT%TZ)" > "${bin}/BUILD-INFO"
  touch "${bin}/.complete"
  log "${part} ${ver}: done in $(( $(date +%s) - t0 ))s"
}

# slb_verify PART VERSION ARG... — run each binary with ARG... (10 s limit); fail if it cannot execute or
# prints nothing. Exit codes are not judged (queue takes no flags and exits on missing env).
slb_verify() {
  local part="$1" ver="$2" b out rc; shift 2
  for b in "${CACHE}/${part}/${ver}/bin"/*; do
    if [ ! -f "$b" ] || [ ! -x "$b" ]; then continue; fi
    rc=0; out="$(cd /tmp && timeout 10 env -i PATH=/usr/bin:/bin "$b" "$@" 2>&1)" || rc=$?
    if [ "$rc" = 126 ] || [ "$rc" = 127 ] || [ -z "$out" ]; then die "${b} $*: exit ${rc}, no usable output"; fi
    log "verify ${part}/${b##*/} $* -> exit ${rc}: $(grep -m1 -v '^[[:space:]]*$' <<<"$out" | cut -c1-110)"
  done
}

# --- the parts -------------------------------------------------------------------------------------
slb_knative() {
  local v="$SLB_KSERVING_VERSION" c pkgs=()
  for c in controller activator autoscaler webhook queue; do pkgs+=("knative.dev/serving/cmd/${c}"); done
  # knative.dev/pkg/changeset reads vcs.revision (absent in module builds: "unknown") unless rev is set
  slb_build knative "$v" knative.dev/serving "-s -w -X knative.dev/pkg/changeset.rev=${v}" "${pkgs[@]}"
  slb_knative_config "$v"
  slb_verify knative "$v" --help
}

# Release manifests, as upstream's serving-crds.yaml / serving-core.yaml are made: config/core of the
# serving module, plus what the module zip drops because it is a symlink in the repository (the
# networking CRDs and config-network from knative.dev/networking, image.yaml from knative.dev/caching,
# both at the versions serving's go.mod requires).
slb_knative_config() {
  local v="$1" d="${CACHE}/knative/$1/config"
  [ -f "${d}/.complete" ] && { log "knative ${v}: config cached ($(find "$d" -name '*.yaml' | wc -l) yaml files)"; return 0; }
  local sdir gm netv cachv ndir cdir f
  sdir="$(slb_mod_dir "knative.dev/serving@${v}")" || die "cannot download knative.dev/serving@${v}"
  gm="$(cd /tmp && go_mod_field "knative.dev/serving@${v}" GoMod)" || gm=""
  netv="$(awk '$1 == "knative.dev/networking" { print $2 }' "$gm")"
  cachv="$(awk '$1 == "knative.dev/caching" { print $2 }' "$gm")"
  if [ -z "$netv" ] || [ -z "$cachv" ]; then die "knative.dev/networking or caching not required by serving@${v}"; fi
  ndir="$(slb_mod_dir "knative.dev/networking@${netv}")" || die "cannot download knative.dev/networking@${netv}"
  cdir="$(slb_mod_dir "knative.dev/caching@${cachv}")" || die "cannot download knative.dev/caching@${cachv}"
  rm -rf "$d"; mkdir -p "$d"
  for f in core post-install hpa-autoscaling; do
    [ -d "${sdir}/config/${f}" ] && (cd "${sdir}/config" && find "$f" -name '*.yaml' -exec cp --parents {} "$d/" \;)
  done
  for f in ingress certificate serverlessservice domain-claim; do
    cp "${ndir}/config/${f}.yaml" "${d}/core/300-resources/${f}.yaml"
  done
  cp "${ndir}/config/config-network.yaml" "${d}/core/configmaps/network.yaml"
  cp "${cdir}/config/image.yaml" "${d}/core/300-imagecache.yaml"
  chmod -R u+w "$d"
  printf 'knative.dev/serving %s config/{core,post-install,hpa-autoscaling}\nknative.dev/networking %s config/{ingress,certificate,serverlessservice,domain-claim}.yaml -> core/300-resources/, config-network.yaml -> core/configmaps/network.yaml\nknative.dev/caching %s config/image.yaml -> core/300-imagecache.yaml\n' \
    "$v" "$netv" "$cachv" > "${d}/SOURCES"
  touch "${d}/.complete"
  log "knative ${v}: config: $(find "$d" -name '*.yaml' | wc -l) yaml files (networking ${netv}, caching ${cachv})"
}

slb_metrics_server() {
  local v="$SLB_METRICS_SERVER_VERSION" p f="-s -w"
  # `metrics-server --version` prints client-go's gitVersion (upstream's Makefile sets it the same way)
  for p in k8s.io/client-go/pkg/version k8s.io/component-base/version; do
    f+=" -X ${p}.gitVersion=${v} -X ${p}.gitTreeState=clean -X ${p}.buildDate=${SLB_BUILD_DATE}"
  done
  slb_build metrics-server "$v" sigs.k8s.io/metrics-server "$f" sigs.k8s.io/metrics-server/cmd/metrics-server
  local d="${CACHE}/metrics-server/${v}/config"
  if [ ! -f "${d}/.complete" ]; then
    local m; m="$(slb_mod_dir "sigs.k8s.io/metrics-server@${v}")" || die "cannot download sigs.k8s.io/metrics-server@${v}"
    rm -rf "$d"; mkdir -p "$d"
    cp "$m"/manifests/base/* "$d/"; chmod -R u+w "$d"; touch "${d}/.complete"
  fi
  log "metrics-server ${v}: config: $(cd "$d" && echo *)"
  slb_verify metrics-server "$v" --version
}

slb_traefik() {
  local v="$SLB_TRAEFIK_VERSION" m codename
  m="$(slb_mod_dir "github.com/traefik/traefik/v3@${v}")" || die "cannot download github.com/traefik/traefik/v3@${v}"
  codename="$(sed -n 's/^CODENAME ?= *//p' "${m}/Makefile")"
  # Version without the "v", as upstream's goreleaser sets it
  slb_build traefik "$v" github.com/traefik/traefik/v3 \
    "-s -w -X github.com/traefik/traefik/v3/pkg/version.Version=${v#v} -X github.com/traefik/traefik/v3/pkg/version.Codename=${codename:-unknown} -X github.com/traefik/traefik/v3/pkg/version.BuildDate=${SLB_BUILD_DATE}" \
    github.com/traefik/traefik/v3/cmd/traefik
  local d="${CACHE}/traefik/${v}/config"
  if [ ! -f "${d}/.complete" ]; then
    rm -rf "$d"; mkdir -p "$d"
    cp "${m}/docs/content/reference/dynamic-configuration/kubernetes-knative-rbac.yml" "$d/"
    chmod -R u+w "$d"; touch "${d}/.complete"
  fi
  log "traefik ${v}: config: $(cd "$d" && echo *)"
  slb_verify traefik "$v" version
}

# serverless_build [all|knative|metrics-server|traefik]...
serverless_build() {
  [ $# -eq 0 ] && set -- all
  local a
  for a in "$@"; do
    case "$a" in
      all) slb_knative; slb_metrics_server; slb_traefik ;;
      knative) slb_knative ;;
      metrics-server) slb_metrics_server ;;
      traefik) slb_traefik ;;
      *) echo "usage: $0 [all|knative|metrics-server|traefik]..." >&2; return 2 ;;
    esac
  done
}

if [ "${BASH_SOURCE[0]}" = "$0" ]; then
  set -euo pipefail
  go_cache_env
  export GOTOOLCHAIN=local GOFLAGS="-buildvcs=false"
  serverless_build "$@"; exit $?
fi
