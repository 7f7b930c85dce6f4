#!/usr/bin/env bash
# Offline Pulumi toolchain for tizi: the pulumi CLI, the Python language host,
# the kubernetes/docker/koyeb/command resource providers and helm, all built
# from Go sources because this machine reaches no download site (only the Go
# module proxy, PyPI, npm and Debian). See scripts/TOOLCHAIN.md for what is
# built from where, why, and how long it takes.
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
#   scripts/toolchain.sh ensure      build whatever is missing (idempotent)
#   eval "$(scripts/toolchain.sh env)"   put the tools first on PATH, offline Pulumi settings
#   scripts/toolchain.sh versions    print each tool, its version and path
#
# Environment:
#   TIZI_CACHE            cache root (default ~/.cache/tizi)
#   TIZI_GIT_MIRRORS      folder of git mirrors "<owner>+<name>/repo" used for the
#                         sources the Go proxy does not serve (default /work/.mirror)
#   TIZI_BUILD_PULUMI=1   build the CLI even when a real pulumi is already on PATH
#   TIZI_RETRY_FAILED=1   retry optional builds that failed before (else skipped fast)
#   TIZI_OPTIONAL_TIMEOUT seconds allowed for an optional build (default 1200)
#   TIZI_PROVIDERS_ON_PATH=1  `env` also puts the provider folders on PATH
#                         (by default they are registered in PULUMI_HOME instead)
# shellcheck disable=SC2317  # the build_* functions are called indirectly, as "build_$name"
set -euo pipefail

SELF="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)/$(basename "${BASH_SOURCE[0]}")"
CACHE="${TIZI_CACHE:-$HOME/.cache/tizi}"
TC="$CACHE/toolchain"
MIRRORS="${TIZI_GIT_MIRRORS:-/work/.mirror}"

# --- Pins --------------------------------------------------------------------
# pyproject pins the Python SDK pulumi==3.272.0, but the Go proxy serves
# github.com/pulumi/pulumi/pkg/v3 only at v3.274.1 among >= 3.272.0 (v3.272.0,
# v3.273.0 and v3.274.0 answer 403). A 3.274 engine runs 3.272 SDK programs.
PULUMI_VERSION=3.274.1
# The Python language host is its own, untagged module; the proxy serves no
# version of it, so it is built from the git mirror of pulumi/pulumi at the
# newest release tag the mirror holds, against pkg/sdk v$PULUMI_VERSION.
LANGHOST_TAG=v3.259.0
# pulumi-kubernetes==4.34.2 asks for provider 4.34.2, but the proxy serves the
# provider module only at this pseudo-version (the v4.25.0 release commit), and
# the git mirror's newest tag is v4.32.0. It is registered in PULUMI_HOME under
# the version the SDK asks for; the engine then warns about the mismatch.
K8S_PSEUDO=v4.0.0-20260115033456-f47bc2d6f199
K8S_VERSION=4.25.0
K8S_SDK_VERSION=4.34.2
# pulumi-docker 4.0.0: the last release whose provider does not replace the
# Terraform provider with a git submodule. Its go.mod asks for a bridge
# pseudo-version (v3.42.1-0.20230308…) the proxy does not serve; v3.42.1 is
# served but unknown to the checksum database (404), v3.43.0 is both.
DOCKER_VERSION=4.0.0
DOCKER_BRIDGE=v3.43.0
KOYEB_VERSION=0.1.11
HELM_VERSION=3.22.0
COMMAND_VERSION=1.2.1

# name:version:required|optional:binaries (space separated)
STEPS=(
  "pulumi:$PULUMI_VERSION:required:pulumi"
  "pulumi-language-python:${LANGHOST_TAG#v}:required:pulumi-language-python pulumi-language-python-exec pulumi-resource-pulumi-python"
  "pulumi-resource-kubernetes:$K8S_VERSION:required:pulumi-resource-kubernetes"
  "pulumi-resource-docker:$DOCKER_VERSION:required:pulumi-resource-docker"
  "helm:$HELM_VERSION:required:helm"
  "pulumi-resource-koyeb:$KOYEB_VERSION:optional:pulumi-resource-koyeb"
  "pulumi-resource-command:$COMMAND_VERSION:optional:pulumi-resource-command"
)

log() { printf '[toolchain] %s\n' "$*" >&2; }
die() { log "ERROR: $*"; exit 1; }

# Go settings shared by every build: module and build caches under the tizi
# cache (so they survive a fresh clone), and -mod=mod because the throwaway
# build modules have no complete go.sum.
go_env() {
  export GOMODCACHE="$CACHE/go/mod"
  export GOCACHE="$CACHE/go/build"
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

# Copy a subfolder of a git mirror at a tag into DEST (mirror sources are used
# only where the Go proxy serves no usable version).
mirror_export() { # owner+name tag subdir dest
  local repo="$MIRRORS/$1/repo" tree="$2^{tree}"
  [[ -n "$3" ]] && tree="$2:$3"
  [[ "$(git -C "$repo" cat-file -t "$tree" 2>/dev/null)" == tree ]] ||
    die "no git mirror of $1 at $tree in $repo (the Go proxy does not serve this source; set TIZI_GIT_MIRRORS)"
  rm -rf "$4" && mkdir -p "$4"
  # Archive the subfolder's own tree: mirrors may lack large blobs elsewhere.
  git -C "$repo" archive --format=tar "$tree" | tar -x -C "$4"
  chmod -R u+w "$4"
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

build_pulumi-language-python() {
  mirror_export pulumi+pulumi "$LANGHOST_TAG" sdk/python/cmd/pulumi-language-python langhost
  cd langhost
  rm -rf testdata ./*_test.go
  # Upstream points pkg/sdk at the monorepo through relative replaces; use the
  # released modules that the CLI is built from instead.
  go mod edit \
    -dropreplace=github.com/pulumi/pulumi/pkg/v3 \
    -dropreplace=github.com/pulumi/pulumi/sdk/v3 \
    -require="github.com/pulumi/pulumi/pkg/v3@v$PULUMI_VERSION" \
    -require="github.com/pulumi/pulumi/sdk/v3@v$PULUMI_VERSION"
  go mod tidy
  go build -trimpath \
    -ldflags "-s -w -X github.com/pulumi/pulumi/sdk/v3/go/common/version.Version=$LANGHOST_TAG" \
    -o "$OUT/bin/pulumi-language-python" .
  # The host runs the program through pulumi-language-python-exec, found beside
  # it; pulumi-resource-pulumi-python serves Python component providers. Both
  # are scripts shipped in the sdk/v3 module (read-only in the module cache).
  local sdk
  sdk=$(go list -m -f '{{.Dir}}' "github.com/pulumi/pulumi/sdk/v3")
  install -m 0755 "$sdk/python/cmd/pulumi-language-python-exec" "$OUT/bin/"
  install -m 0755 "$sdk/python/dist/pulumi-resource-pulumi-python" "$OUT/bin/"
}

build_pulumi-resource-kubernetes() {
  local dir
  dir=$(go mod download -json "github.com/pulumi/pulumi-kubernetes/provider/v4@$K8S_PSEUDO" |
    python3 -c 'import json,sys; print(json.load(sys.stdin)["Dir"])')
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

build_pulumi-resource-docker() {
  # The git tree (unlike a module zip) holds the nested provider/shim module
  # that exposes kreuzwerker's Terraform docker provider to the bridge.
  mirror_export pulumi+pulumi-docker "v$DOCKER_VERSION" provider provider
  cd provider
  go mod edit -require="github.com/pulumi/pulumi-terraform-bridge/v3@$DOCKER_BRIDGE"
  (cd cmd/pulumi-resource-docker && embed_json schema.json schema-embed.json "$DOCKER_VERSION")
  CGO_ENABLED=0 go build -trimpath \
    -ldflags "-s -w -X github.com/pulumi/pulumi-docker/provider/v4/pkg/version.Version=$DOCKER_VERSION" \
    -o "$OUT/bin/pulumi-resource-docker" ./cmd/pulumi-resource-docker
}

build_helm() {
  # helm's go.mod has no replace lines: a plain `go install` works. The ldflags
  # are those of helm's Makefile: without the k8sVersion ones, `helm lint`
  # checks API deprecations against its built-in default, Kubernetes 1.20.
  local dir cg major minor
  dir=$(go mod download -json "helm.sh/helm/v3@v$HELM_VERSION" |
    python3 -c 'import json,sys; print(json.load(sys.stdin)["Dir"])')
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

build_pulumi-resource-koyeb() {
  mirror_export koyeb+pulumi-koyeb "v$KOYEB_VERSION" provider provider
  # The Terraform provider it wraps is served by no version on the Go proxy:
  # take it from its git mirror at the tag go.mod asks for.
  local tf
  tf=$(sed -n 's|^[[:space:]]*github.com/koyeb/terraform-provider-koyeb \(v[^ ]*\).*|\1|p' provider/go.mod)
  mirror_export koyeb+terraform-provider-koyeb "$tf" "" terraform-provider-koyeb
  cd provider
  go mod edit -replace=github.com/koyeb/terraform-provider-koyeb=../terraform-provider-koyeb
  (cd cmd/pulumi-resource-koyeb && embed_json schema.json schema.json "$KOYEB_VERSION")
  CGO_ENABLED=0 go build -trimpath \
    -ldflags "-s -w -X github.com/koyeb/pulumi-koyeb/provider/pkg/version.Version=$KOYEB_VERSION" \
    -o "$OUT/bin/pulumi-resource-koyeb" ./cmd/pulumi-resource-koyeb
}

build_pulumi-resource-command() {
  mirror_export pulumi+pulumi-command "v$COMMAND_VERSION" provider provider
  cd provider
  CGO_ENABLED=0 go build -trimpath \
    -ldflags "-s -w -X github.com/pulumi/pulumi-command/provider/pkg/version.Version=$COMMAND_VERSION" \
    -o "$OUT/bin/pulumi-resource-command" ./cmd/pulumi-resource-command
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
  for entry in "kubernetes:$K8S_VERSION:$K8S_SDK_VERSION" "docker:$DOCKER_VERSION:$DOCKER_VERSION" \
    "koyeb:$KOYEB_VERSION:$KOYEB_VERSION" "command:$COMMAND_VERSION:$COMMAND_VERSION"; do
    IFS=: read -r name version asked <<<"$entry"
    d=$(step_dir "pulumi-resource-$name" "$version")
    [[ -f "$d/.complete" ]] || continue
    reg="$PULUMI_HOME/plugins/resource-$name-v$asked/pulumi-resource-$name"
    # Registered copies are newer than their build; a rebuild makes them stale.
    [[ -x "$reg" && "$reg" -nt "$d/bin/pulumi-resource-$name" ]] && continue
    log "registering plugin resource $name $asked in $PULUMI_HOME"
    "$pulumi" plugin install resource "$name" "$asked" --reinstall \
      --file "$d/bin/pulumi-resource-$name" >&2
  done
}

# The CLI looks for its language hosts beside its own (resolved) executable
# first, as in a release archive; found only on PATH, each run warns "using
# pulumi-language-python from $PATH". So link the host into the CLI's folder.
link_langhost() {
  local cli lh b
  cli="$(step_dir pulumi "$PULUMI_VERSION")/bin"
  lh="$(step_dir pulumi-language-python "${LANGHOST_TAG#v}")/bin"
  [[ -f "$cli/../.complete" && -f "$lh/../.complete" ]] || return 0
  for b in pulumi-language-python pulumi-language-python-exec pulumi-resource-pulumi-python; do
    [[ "$(readlink "$cli/$b" 2>/dev/null)" == "$lh/$b" ]] || ln -sfn "$lh/$b" "$cli/$b"
  done
}

path_dirs() { # bin folders of every completed step, in STEPS order
  local s name version kind bins real
  real=$(real_pulumi || true)
  for s in "${STEPS[@]}"; do
    IFS=: read -r name version kind bins <<<"$s"
    # The language host is reached through the CLI's folder (link_langhost).
    [[ "$name" == pulumi-language-python ]] && continue
    # Providers are found in PULUMI_HOME (install_plugins) under the versions
    # the SDKs ask for. On PATH they would take precedence and every pulumi
    # run would warn "using pulumi-resource-X from $PATH" for each of them.
    [[ "$name" == pulumi-resource-* && "${TIZI_PROVIDERS_ON_PATH:-0}" != 1 ]] && continue
    [[ -n "$real" && "$name" == pulumi ]] && continue
    [[ -f "$(step_dir "$name" "$version")/.complete" ]] && printf '%s\n' "$(step_dir "$name" "$version")/bin"
  done
  return 0
}

cmd_ensure() {
  local s name failed=() real
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
    if [[ -n "$real" && ( "$name" == pulumi || "$name" == pulumi-language-python ) ]]; then
      log "$name: using the installed $real"
      continue
    fi
    run_step "$s" || failed+=("$name")
  done
  [[ -n "$real" ]] || link_langhost
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
    if [[ -n "$real" && ( "$name" == pulumi || "$name" == pulumi-language-python ) ]]; then
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
  local p
  if p=$(PATH="$(path_dirs | paste -sd: -):$PATH" command -v pulumi); then
    printf '%-28s %-10s %s\n' "pulumi version" "$("$p" version 2>/dev/null)" "$p"
  fi
}

main() {
  case "${1:-ensure}" in
    ensure) cmd_ensure ;;
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
