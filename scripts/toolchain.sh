#!/usr/bin/env bash
# Offline Pulumi toolchain for tizi: the pulumi CLI, the kubernetes resource
# provider and helm, built from the Go module proxy, plus tizi's own docker
# provider (provider/docker-standin), because this machine reaches no download
# site (only the Go module proxy, PyPI, npm and Debian). See scripts/TOOLCHAIN.md
# for what is built from where, why, what cannot be built, and how long it takes.
#
# Every build lands outside the clone, keyed by version, so a second run only
# checks marker files (well under a second):
#   ${TIZI_CACHE:-~/.cache/tizi}/toolchain/<name>-<version>/bin/...   binaries
#   ${TIZI_CACHE}/toolchain/<name>-<version>/BUILD-INFO               how/when built
#   ${TIZI_CACHE}/toolchain/logs/<name>-<version>.log                 build output
#   ${TIZI_CACHE}/toolchain/src/<name>-<version>/                     build workdirs
#   ${TIZI_CACHE}/go/{mod,build}                                      GOMODCACHE/GOCACHE
#   ${TIZI_CACHE}/pulumi-home                                         PULUMI_HOME
#
# Usage:
#   scripts/toolchain.sh ensure [PART...]   build whatever is missing (idempotent); PARTs:
#                                    pulumi kubernetes helm docker (default: all)
#   eval "$(scripts/toolchain.sh env)"   put the tools first on PATH, offline Pulumi settings
#   scripts/toolchain.sh versions    print each tool, its version and path
#
# Environment:
#   TIZI_CACHE            cache root (default ~/.cache/tizi)
#   TIZI_BUILD_PULUMI=1   build the CLI even when a real pulumi is already on PATH
#   TIZI_RETRY_FAILED=1   retry optional builds that failed before (else skipped fast)
#   TIZI_OPTIONAL_TIMEOUT seconds allowed for an optional build (default 1200)
#   TIZI_PROVIDERS_ON_PATH=1  `env` also puts the provider folders on PATH
#                         (by default they are registered in PULUMI_HOME instead)
# shellcheck disable=SC2317  # the build_* functions are called indirectly, as "build_$name"
set -euo pipefail

SELF="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)/$(basename "${BASH_SOURCE[0]}")"
LOG_TAG=toolchain
# shellcheck source=lib/common.sh
. "$(dirname "$SELF")/lib/common.sh"   # ROOT, CACHE, log, die, go_cache_env, go_mod_field
TC="$CACHE/toolchain"

# --- Pins --------------------------------------------------------------------
# pyproject pins the Python SDK pulumi==3.272.0, but the Go proxy serves
# github.com/pulumi/pulumi/pkg/v3 only at v3.274.1 among >= 3.272.0 (v3.272.0,
# v3.273.0 and v3.274.0 answer 403). A 3.274 engine runs 3.272 SDK programs.
PULUMI_VERSION=3.274.1
# Everything here comes from the Go module proxy (or, for the docker provider,
# from this repository). Not built, because the proxy serves none of their
# sources: the Python language host (tizi runs its program inline through the
# Automation API and its policy pack as an executable analyzer, so neither
# needs it), the upstream docker provider (provider/docker-standin stands in),
# the koyeb and command providers. See README, "Toolchain".
# pulumi-kubernetes==4.34.2 asks for provider 4.34.2, but the proxy serves the
# provider module only at this pseudo-version (the v4.25.0 release commit), and
# no newer release is served. It is registered in PULUMI_HOME under
# the version the SDK asks for; the engine then warns about the mismatch.
K8S_PSEUDO=v4.0.0-20260115033456-f47bc2d6f199
K8S_VERSION=4.25.0
K8S_SDK_VERSION=4.34.2
# The docker provider tizi deploys with: its own stand-in (provider/docker-standin,
# built by scripts/build-docker-standin.sh), registered as the version the pinned
# pulumi-docker SDK asks for.
DOCKER_VERSION=4.0.0
HELM_VERSION=3.22.0

# name:version:required|optional:binaries (space separated)
STEPS=(
  "pulumi:$PULUMI_VERSION:required:pulumi"
  "pulumi-resource-kubernetes:$K8S_VERSION:required:pulumi-resource-kubernetes"
  "helm:$HELM_VERSION:required:helm"
)

# Go settings shared by every build: module and build caches under the tizi
# cache (so they survive a fresh clone), and -mod=mod because the throwaway
# build modules have no complete go.sum.
go_env() {
  go_cache_env
  # -buildvcs=false: the workdirs are no git checkouts (the machine's default).
  export GOFLAGS="-mod=mod -buildvcs=false"
  mkdir -p "$GOMODCACHE" "$GOCACHE"
}

# A pulumi on PATH that is not ours and actually runs (the npm "pulumi"
# package, for instance, is only a downloader and fails offline).
real_pulumi() {
  [[ "${TIZI_BUILD_PULUMI:-0}" == 1 ]] && return 1
  local dir
  local IFS=:
  for dir in $PATH; do
    [[ -n "$dir" && "$dir" != "$TC"/* && -x "$dir/pulumi" ]] || continue
    if timeout 20 "$dir/pulumi" version 2>/dev/null | grep -q '^v3\.'; then
      printf '%s\n' "$dir/pulumi"
      return 0
    fi
  done
  return 1
}

# Set the schema's "version" (as the providers' own `go generate` steps do)
# and write it compactly to the embed file the provider's main.go expects.
embed_json() { # src dest [version]
  python3 - "$@" <<'PY'
import json, sys
src, dest = sys.argv[1], sys.argv[2]
with open(src, encoding="utf-8") as f:
    doc = json.load(f)
if len(sys.argv) > 3:
    doc["version"] = sys.argv[3]
with open(dest, "w", encoding="utf-8") as f:
    json.dump(doc, f, separators=(",", ":"))
PY
}

# --- Builders (each runs in its own process, cwd = its workdir, $OUT/bin) ----

build_pulumi() {
  # pkg/go.mod has `replace` lines, so `go install pkg@v` is refused: build it
  # as a dependency of a throwaway module carrying the one replace that is
  # not a local path.
  cat >go.mod <<'EOF'
module tizi.local/build/pulumi

go 1.26

replace github.com/atotto/clipboard => github.com/tgummerer/clipboard v0.0.0-20241001131231-d02d263e614e
EOF
  go get -tool "github.com/pulumi/pulumi/pkg/v3/cmd/pulumi@v$PULUMI_VERSION"
  go build -trimpath -tags osusergo,grpcnotrace \
    -ldflags "-s -w -X github.com/pulumi/pulumi/sdk/v3/go/common/version.Version=v$PULUMI_VERSION" \
    -o "$OUT/bin/pulumi" github.com/pulumi/pulumi/pkg/v3/cmd/pulumi
}

build_pulumi-resource-kubernetes() {
  local dir
  dir=$(go_mod_field "github.com/pulumi/pulumi-kubernetes/provider/v4@$K8S_PSEUDO" Dir)
  rm -rf provider && cp -r "$dir" provider && chmod -R u+w provider
  # schema-embed.json / terraform-mapping-embed.json are generated (by
  # cmd/pulumi-resource-kubernetes/generate.go) and absent from the module zip.
  (cd provider/cmd/pulumi-resource-kubernetes &&
    embed_json schema.json schema-embed.json "$K8S_VERSION" &&
    embed_json terraform-mapping.json terraform-mapping-embed.json)
  cd provider
  # go.mod replaces the Go SDK with the monorepo's ../sdk: use the released
  # sdk/v4 module of the same release instead.
  go mod edit -dropreplace=github.com/pulumi/pulumi-kubernetes/sdk/v4 \
    -require="github.com/pulumi/pulumi-kubernetes/sdk/v4@v$K8S_VERSION"
  CGO_ENABLED=0 go build -trimpath \
    -ldflags "-s -w -X github.com/pulumi/pulumi-kubernetes/provider/v4/pkg/version.Version=$K8S_VERSION" \
    -o "$OUT/bin/pulumi-resource-kubernetes" ./cmd/pulumi-resource-kubernetes
}

build_helm() {
  # helm's go.mod has no replace lines: a plain `go install` works. The ldflags
  # are those of helm's Makefile: without the k8sVersion ones, `helm lint`
  # checks API deprecations against its built-in default, Kubernetes 1.20.
  local dir cg major minor
  dir=$(go_mod_field "helm.sh/helm/v3@v$HELM_VERSION" Dir)
  cg=$(awk '$1 == "k8s.io/client-go" {print $2}' "$dir/go.mod") # v0.37.0 -> 1.37
  major=$(($(cut -d. -f1 <<<"${cg#v}") + 1))
  minor=$(cut -d. -f2 <<<"$cg")
  local x=helm.sh/helm/v3
  GOBIN="$OUT/bin" CGO_ENABLED=0 go install -trimpath -ldflags "-s -w \
    -X $x/internal/version.version=v$HELM_VERSION -X $x/internal/version.gitTreeState=clean \
    -X $x/pkg/lint/rules.k8sVersionMajor=$major -X $x/pkg/lint/rules.k8sVersionMinor=$minor \
    -X $x/pkg/chartutil.k8sVersionMajor=$major -X $x/pkg/chartutil.k8sVersionMinor=$minor" \
    "helm.sh/helm/v3/cmd/helm@v$HELM_VERSION"
}

# --- Steps -------------------------------------------------------------------

step_dir() { printf '%s/%s-%s' "$TC" "$1" "$2"; }

step_built() { # name version bins
  local d b
  d=$(step_dir "$1" "$2")
  [[ -f "$d/.complete" ]] || return 1
  for b in $3; do [[ -x "$d/bin/$b" ]] || return 1; done
}

# Internal: `toolchain.sh _build NAME` runs one builder in a fresh process.
cmd_build_one() {
  local name=$1 version=$2 d
  d=$(step_dir "$name" "$version")
  go_env
  export OUT="$d"
  mkdir -p "$TC/src/$name-$version" "$d/bin"
  cd "$TC/src/$name-$version"
  "build_$name"
}

run_step() { # "name:version:kind:bins"
  local name version kind bins d logf started secs rc=0 timeout_s=0
  IFS=: read -r name version kind bins <<<"$1"
  d=$(step_dir "$name" "$version")
  logf="$TC/logs/$name-$version.log"

  if step_built "$name" "$version" "$bins"; then
    log "$name $version cached"
    return 0
  fi
  if [[ "$kind" == optional && -f "$d/.failed" && "${TIZI_RETRY_FAILED:-0}" != 1 ]]; then
    log "$name $version skipped: failed before ($(head -n1 "$d/.failed")); TIZI_RETRY_FAILED=1 retries"
    return 0
  fi

  mkdir -p "$TC/logs"
  rm -rf "$d" && mkdir -p "$d/bin"
  [[ "$kind" == optional ]] && timeout_s="${TIZI_OPTIONAL_TIMEOUT:-1200}"
  log "building $name $version ... (log: $logf)"
  started=$(date +%s)
  timeout "$timeout_s" "$SELF" _build "$name" "$version" >"$logf" 2>&1 || rc=$?
  secs=$(($(date +%s) - started))

  if ((rc != 0)); then
    local why
    why=$(grep -E 'ERROR|[Ee]rror[: ]|cannot|undefined|not available|no required|invalid|40[34] ' "$logf" |
      tail -n 1 || true)
    ((rc == 124)) && why="timed out after ${timeout_s}s"
    tail -n 25 "$logf" >&2 || true
    rm -rf "${d:?}/bin"
    mkdir -p "$d"
    printf '%s\nexit %s after %ss; log: %s\n' "${why:-exit $rc}" "$rc" "$secs" "$logf" >"$d/.failed"
    if [[ "$kind" == optional ]]; then
      log "$name $version FAILED after ${secs}s (optional, continuing): ${why:-exit $rc}"
      return 0
    fi
    log "$name $version FAILED after ${secs}s: ${why:-exit $rc}"
    return 1
  fi

  {
    echo "name: $name"
    echo "version: $version"
    echo "built: $(date -u +%Y-%m-%dT%H:%M:%SZ) in ${secs}s with $(go version | cut -d' ' -f3)"
  } >"$d/BUILD-INFO"
  rm -f "$d/.failed"
  touch "$d/.complete"
  log "$name $version built in ${secs}s"
}

# Register the providers in PULUMI_HOME too, under the versions the pinned
# Python SDKs ask for, so `pulumi plugin ls` lists them and the engine finds
# them even without PATH. (On PATH they are used whatever version is asked.)
install_plugins() {
  local pulumi name version asked d reg entry
  pulumi=$(command -v pulumi) || return 0
  export PULUMI_HOME="$CACHE/pulumi-home" PULUMI_SKIP_UPDATE_CHECK=true
  for entry in "kubernetes:$(step_dir pulumi-resource-kubernetes "$K8S_VERSION")/bin:$K8S_SDK_VERSION" \
    "docker:${DOCKER_STANDIN_BIN:-}:$DOCKER_VERSION"; do
    IFS=: read -r name bin asked <<<"$entry"
    [[ -n "$bin" && -x "$bin/pulumi-resource-$name" ]] || continue
    reg="$PULUMI_HOME/plugins/resource-$name-v$asked/pulumi-resource-$name"
    # Registered copies are identical to their build; a rebuild makes them stale.
    cmp -s "$reg" "$bin/pulumi-resource-$name" && continue
    log "registering plugin resource $name $asked in $PULUMI_HOME"
    "$pulumi" plugin install resource "$name" "$asked" --reinstall \
      --file "$bin/pulumi-resource-$name" >&2
  done
}

path_dirs() { # bin folders of every completed step, in STEPS order
  local s name version kind bins real
  real=$(real_pulumi || true)
  for s in "${STEPS[@]}"; do
    IFS=: read -r name version kind bins <<<"$s"
    # Providers are found in PULUMI_HOME (install_plugins) under the versions
    # the SDKs ask for. On PATH they would take precedence and every pulumi
    # run would warn "using pulumi-resource-X from $PATH" for each of them.
    [[ "$name" == pulumi-resource-* && "${TIZI_PROVIDERS_ON_PATH:-0}" != 1 ]] && continue
    [[ -n "$real" && "$name" == pulumi ]] && continue
    [[ -f "$(step_dir "$name" "$version")/.complete" ]] && printf '%s\n' "$(step_dir "$name" "$version")/bin"
  done
  return 0
}

# The parts `ensure` can build, as `tizi needs` names them, and the step each one is.
part_of() {
  case "$1" in
    pulumi) echo pulumi ;;
    pulumi-resource-kubernetes) echo kubernetes ;;
    helm) echo helm ;;
    *) echo "$1" ;;
  esac
}

cmd_ensure() {
  local s name failed=() real part
  # With arguments (pulumi kubernetes helm docker), only those parts: `make up` builds what
  # the stack's targets need (`tizi needs`); without, everything (`make test`).
  local -A wanted=()
  for part in "$@"; do
    case "$part" in pulumi | kubernetes | helm | docker) wanted[$part]=1 ;;
      *) die "unknown part '$part' (pulumi | kubernetes | helm | docker)" ;; esac
  done
  want() { ((${#wanted[@]} == 0)) || [[ -n "${wanted[$1]:-}" ]]; }
  command -v go >/dev/null || die "go is not installed (needs Go >= 1.26)"
  # One ensure at a time per cache: a second one waits, then finds it all cached.
  mkdir -p "$TC"
  exec 9>"$TC/.lock"
  if ! flock -n 9; then
    log "another ensure is running on $TC: waiting for it"
    flock 9
  fi
  real=$(real_pulumi || true)
  for s in "${STEPS[@]}"; do
    name=${s%%:*}
    want "$(part_of "$name")" || continue
    if [[ -n "$real" && "$name" == pulumi ]]; then
      log "$name: using the installed $real"
      continue
    fi
    run_step "$s" || failed+=("$name")
  done
  # tizi's own docker provider (our code, not a mirror of upstream): built from
  # this repository, cached by a hash of its sources.
  local standin
  if ! want docker; then
    :
  elif standin=$("$ROOT/scripts/build-docker-standin.sh" | tail -n 1); then
    export DOCKER_STANDIN_BIN="$standin"
  else
    failed+=("docker-standin")
  fi
  local dirs
  dirs=$(path_dirs | paste -sd: -)
  PATH="${dirs:+$dirs:}$PATH" install_plugins || failed+=("plugin-install")
  if ((${#failed[@]})); then
    die "failed: ${failed[*]} (see $TC/logs/)"
  fi
  log "ready: eval \"\$($SELF env)\""
}

cmd_env() {
  local dirs
  dirs=$(path_dirs | paste -sd: -)
  if [[ -n "$dirs" ]]; then
    # shellcheck disable=SC2016  # $PATH is meant to expand in the caller's shell
    printf 'export PATH=%q:"$PATH"\n' "$dirs"
  else
    log "nothing built yet: run $SELF ensure"
  fi
  printf 'export PULUMI_HOME=%q\n' "$CACHE/pulumi-home"
  echo 'export PULUMI_SKIP_UPDATE_CHECK=true'
  echo 'export PULUMI_DISABLE_AUTOMATIC_PLUGIN_ACQUISITION=true'
}

cmd_versions() {
  local s name version kind bins d real status
  real=$(real_pulumi || true)
  for s in "${STEPS[@]}"; do
    IFS=: read -r name version kind bins <<<"$s"
    d=$(step_dir "$name" "$version")
    if [[ -n "$real" && "$name" == pulumi ]]; then
      status="installed: $real"
    elif [[ -f "$d/.complete" ]]; then
      status="$d/bin"
    elif [[ -f "$d/.failed" ]]; then
      status="FAILED: $(head -n1 "$d/.failed")"
    else
      status="missing ($kind)"
    fi
    printf '%-28s %-10s %s\n' "$name" "$version" "$status"
  done
  local reg="$CACHE/pulumi-home/plugins/resource-docker-v$DOCKER_VERSION/pulumi-resource-docker"
  if [[ -x "$reg" ]]; then
    printf '%-28s %-10s %s\n' "pulumi-resource-docker" "$DOCKER_VERSION" "tizi docker-standin, registered at $reg"
  else
    printf '%-28s %-10s %s\n' "pulumi-resource-docker" "$DOCKER_VERSION" "missing (run ensure)"
  fi
  local p
  if p=$(PATH="$(path_dirs | paste -sd: -):$PATH" command -v pulumi); then
    printf '%-28s %-10s %s\n' "pulumi version" "$("$p" version 2>/dev/null)" "$p"
  fi
}

main() {
  case "${1:-ensure}" in
    ensure) (($#)) && shift; cmd_ensure "$@" ;;
    env) cmd_env ;;
    versions) cmd_versions ;;
    _build) shift; cmd_build_one "$@" ;;
    -h | --help | help) awk 'NR > 1 && /^#/ && !/shellcheck/ {sub(/^# ?/, ""); print; next} NR > 1 {exit}' "$SELF" ;;
    *) die "unknown command '$1' (ensure | env | versions)" ;;
  esac
}

# One line, so that bash has read it whole before running: editing this file
# while a long `ensure` runs cannot make the running shell read new bytes.
main "$@"; exit $?
