# shellcheck shell=bash
# scripts/kind/parts.sh — sourced by scripts/kind/node-image.sh: the parts of a kind node that
# scripts/cluster.sh does not already build, each built once into ${KIND_CACHE} and keyed by
# version. Needs: lib/common.sh, go_cache_env, GOTOOLCHAIN=local.
#
#   build_kind_cli      kind 0.33 from Debian sid (dpkg -x, never installed)
#   build_etcd36        etcd ${ETCD_VERSION} from go.etcd.io/etcd/server/v3 (the version kubeadm
#                       1.34 names: its static pod passes 3.6-only flags, so sid's 3.5 won't do)
#   build_coredns       CoreDNS ${COREDNS_VERSION} from github.com/coredns/coredns (go install)
#   build_local_path    local-path-provisioner ${LOCAL_PATH_VERSION} (go install)

# A throwaway module whose main calls etcd's own entry point, etcdmain.Main: the binary is
# etcd's, only the module that requires it is ours (etcd's root module replaces its siblings
# with local paths, so `go install go.etcd.io/etcd/v3` is refused).
build_etcd36() {
  local out="${KIND_CACHE}/bin/etcd-${ETCD_VERSION}"
  [ -x "$out" ] && return 0
  local src="${KIND_CACHE}/src/etcd-${ETCD_VERSION}" s
  s=$(date +%s)
  mkdir -p "$src" "${KIND_CACHE}/bin"
  log "building etcd ${ETCD_VERSION} (go.etcd.io/etcd/server/v3, CGO_ENABLED=0)"
  cat > "${src}/go.mod" <<EOF
module tizi.local/etcdbuild

go 1.24
EOF
  cat > "${src}/main.go" <<'EOF'
// The etcd server binary: etcd's own entry point, unchanged.
package main

import (
	"os"

	"go.etcd.io/etcd/server/v3/etcdmain"
)

func main() { etcdmain.Main(os.Args) }
EOF
  (cd "$src" && go get "go.etcd.io/etcd/server/v3@v${ETCD_VERSION}" && go mod tidy) || die "go get etcd ${ETCD_VERSION} failed"
  (cd "$src" && CGO_ENABLED=0 go build -trimpath -ldflags "-s -w" -o "${out}.tmp" .) || die "etcd build failed"
  mv "${out}.tmp" "$out"
  log "built etcd $("$out" --version | head -1) in $(( $(date +%s) - s ))s"
}

# go_install_once NAME MODULE VERSION — `go install MODULE@VERSION` (a module without replace
# lines) into ${KIND_CACHE}/bin/NAME-VERSION, once
go_install_once() {
  local name="$1" module="$2" version="$3" out="${KIND_CACHE}/bin/$1-$3" s
  [ -x "$out" ] && return 0
  s=$(date +%s)
  mkdir -p "${KIND_CACHE}/bin" "${KIND_CACHE}/gobin"
  log "building ${name} ${version} (go install ${module}, CGO_ENABLED=0)"
  GOBIN="${KIND_CACHE}/gobin" CGO_ENABLED=0 go install -trimpath -ldflags "-s -w" "${module}@${version}" ||
    die "${name} ${version} build failed"
  mv "${KIND_CACHE}/gobin/${name}" "$out"
  log "built ${name} ${version} in $(( $(date +%s) - s ))s"
}

build_coredns() { go_install_once coredns github.com/coredns/coredns "$COREDNS_VERSION"; }

build_kind_cli() {
  local out="${KIND_CACHE}/bin/kind"
  [ -x "$out" ] && return 0
  log "fetching kind from Debian sid (dpkg -x, not installed)"
  local x; x="$(mktemp -d)"
  mkdir -p "${KIND_CACHE}/bin"
  sid_extract kind "$x"
  cp "$x/usr/bin/kind" "${out}.tmp" && mv "${out}.tmp" "$out"
  echo "$SID_DEB" > "${KIND_CACHE}/bin/kind.deb"
  rm -rf "$x"
  log "$("$out" version)"
}

# Rancher's local-path provisioner, the default StorageClass of kind's node images
# (node/rootfs/kind/manifests/default-storage.yaml)
build_local_path() {
  go_install_once local-path-provisioner github.com/rancher/local-path-provisioner "$LOCAL_PATH_VERSION"
}
