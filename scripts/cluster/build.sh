# shellcheck shell=bash
# scripts/cluster/build.sh — sourced by scripts/cluster.sh: the binaries and the pause image,
# built or fetched once into ${KDIR} (${TIZI_CACHE}/k8s/<version>/), keyed by version.
#   Kubernetes (kube-*, kubelet, kubectl) and crictl from the Go module proxy, etcd from Debian sid
#   (dpkg -x), the pause image from 15 lines of C; host packages from bookworm.

k8s_ldflags() {
  local v="$K8S_VERSION" maj min
  maj="${v#v}"; maj="${maj%%.*}"
  min="${v#v*.}"; min="${min%%.*}"
  local f="-s -w"
  for p in k8s.io/component-base/version k8s.io/client-go/pkg/version; do
    f+=" -X ${p}.gitVersion=${v} -X ${p}.gitMajor=${maj} -X ${p}.gitMinor=${min}"
    f+=" -X ${p}.gitTreeState=clean -X ${p}.buildDate=1970-01-01T00:00:00Z"
  done
  echo "$f"
}

# Throwaway module: require k8s.io/kubernetes, replace every staging module by its
# published v0.<minor>.<patch>, copy k8s' godebug line.
k8s_module() {
  local src="${KDIR}/src"
  [ -f "${src}/.ready" ] && return 0
  mkdir -p "$src" "$GOMODCACHE" "$GOCACHE"
  log "preparing build module ${src}"
  local stagever="v0.${K8S_VERSION#v1.}"
  local kmod
  kmod="$(cd /tmp && go_mod_field "k8s.io/kubernetes@${K8S_VERSION}" GoMod)"
  [ -f "$kmod" ] || die "cannot download k8s.io/kubernetes@${K8S_VERSION}"
  {
    echo "module tizi.local/k8sbuild"
    echo
    grep -E '^go [0-9]' "$kmod"
    grep -E '^godebug ' "$kmod" || true
    echo
    echo "require k8s.io/kubernetes ${K8S_VERSION}"
    echo
    echo "replace ("
    sed -n 's#^\t\(k8s.io/[a-z0-9-]*\) => ./staging/src/.*#\t\1 => \1 '"${stagever}"'#p' "$kmod"
    echo ")"
  } > "${src}/go.mod"
  cat > "${src}/tools.go" <<'EOF'
package main

func main() {}
EOF
  local c pkgs=()
  for c in kube-apiserver kube-controller-manager kube-scheduler kube-proxy kubelet kubectl kubeadm; do
    pkgs+=("k8s.io/kubernetes/cmd/${c}@${K8S_VERSION}")
  done
  (cd "$src" && go get "${pkgs[@]}") || die "go get failed"
  touch "${src}/.ready"
}

build_k8s() {
  mkdir -p "$BIN"
  local want=(kube-apiserver kube-controller-manager kube-scheduler kube-proxy kubectl kubelet kubeadm) missing=() c
  for c in "${want[@]}"; do [ -x "${BIN}/${c}" ] || missing+=("$c"); done
  [ ${#missing[@]} -eq 0 ] && return 0
  k8s_module
  # a module prepared before kubeadm joined the list lacks its requirements: add them
  (cd "${KDIR}/src" && go list -deps "k8s.io/kubernetes/cmd/kubeadm" >/dev/null 2>&1) ||
    (cd "${KDIR}/src" && go get "k8s.io/kubernetes/cmd/kubeadm@${K8S_VERSION}") || die "go get kubeadm failed"
  local ld; ld="$(k8s_ldflags)"
  for c in "${missing[@]}"; do
    local s; s=$(date +%s)
    log "building ${c} ${K8S_VERSION} (go $(go env GOVERSION))"
    if [ "$c" = kubelet ]; then
      (cd "${KDIR}/src" && CGO_ENABLED=1 go build -trimpath -ldflags "$ld" -o "${BIN}/${c}.tmp" "k8s.io/kubernetes/cmd/${c}")
    else
      (cd "${KDIR}/src" && CGO_ENABLED=0 go build -trimpath -ldflags "$ld" -o "${BIN}/${c}.tmp" "k8s.io/kubernetes/cmd/${c}")
    fi
    mv "${BIN}/${c}.tmp" "${BIN}/${c}"
    log "built ${c} in $(( $(date +%s) - s ))s"
  done
}

# crictl (stops pod sandboxes through the CRI, so CNI DEL cleans their network state)
build_crictl() {
  [ -x "${BIN}/crictl" ] && return 0
  local v="${K8S_VERSION%.*}.0" s
  s=$(date +%s)
  log "building crictl ${v} (sigs.k8s.io/cri-tools, no replace lines: go install)"
  GOBIN="${BIN}" CGO_ENABLED=0 go install -trimpath -ldflags "-s -w -X sigs.k8s.io/cri-tools/pkg/version.Version=${v}" \
    "sigs.k8s.io/cri-tools/cmd/crictl@${v}" || die "crictl build failed"
  log "built crictl in $(( $(date +%s) - s ))s"
}

# etcd: sid's etcd-server .deb extracted with dpkg -x (a separate apt state; the
# system's sources are not touched).
build_etcd() {
  [ -x "${BIN}/etcd" ] && return 0
  log "fetching etcd-server from Debian sid (dpkg -x, not installed)"
  local x; x="$(mktemp -d)"
  sid_extract etcd-server "$x"
  cp "$x/usr/bin/etcd" "${BIN}/etcd.tmp" && mv "${BIN}/etcd.tmp" "${BIN}/etcd"
  echo "$SID_DEB" > "${BIN}/etcd.deb"
  rm -rf "$x"
  log "etcd $("${BIN}/etcd" --version | head -1)"
}

# The pause image: a tiny static C program, packed by hand as a `docker save`
# archive (manifest.json + config + one layer) that `ctr images import` accepts.
build_pause() {
  local out="${KDIR}/pause.tar"
  [ -f "$out" ] && return 0
  log "building pause image ${PAUSE_IMAGE}"
  local d; d="$(mktemp -d)"
  cat > "$d/pause.c" <<'EOF'
#include <signal.h>
#include <stdlib.h>
#include <sys/wait.h>
#include <unistd.h>
static void die(int s) { (void)s; _exit(0); }
static void reap(int s) { (void)s; while (waitpid(-1, NULL, WNOHANG) > 0) {} }
int main(void) {
  struct sigaction a = {0}, b = {0};
  a.sa_handler = die; sigaction(SIGINT, &a, NULL); sigaction(SIGTERM, &a, NULL);
  b.sa_handler = reap; b.sa_flags = SA_NOCLDSTOP; sigaction(SIGCHLD, &b, NULL);
  for (;;) pause();
}
EOF
  mkdir -p "$d/root"
  gcc -Os -static -o "$d/root/pause" "$d/pause.c" && strip "$d/root/pause"
  pack_image "$d/root" "$PAUSE_IMAGE" '["/pause"]' "65535" "$out"
  rm -rf "$d"
}

# pack_image ROOTDIR NAME ENTRYPOINT_JSON USER OUT.tar — a single-layer docker-archive.
pack_image() {
  local root="$1" name="$2" ep="$3" user="$4" out="$5" w
  w="$(mktemp -d)"
  tar --sort=name --mtime=@0 --owner=0 --group=0 --numeric-owner -C "$root" -cf "$w/layer.tar" .
  local diff; diff="$(sha256sum "$w/layer.tar" | cut -d' ' -f1)"
  mkdir -p "$w/img/$diff"; mv "$w/layer.tar" "$w/img/$diff/layer.tar"
  printf '{"architecture":"amd64","os":"linux","created":"1970-01-01T00:00:00Z","config":{"Entrypoint":%s,"User":"%s","WorkingDir":"/"},"rootfs":{"type":"layers","diff_ids":["sha256:%s"]}}' \
    "$ep" "$user" "$diff" > "$w/config.json"
  local cfg; cfg="$(sha256sum "$w/config.json" | cut -d' ' -f1)"
  mv "$w/config.json" "$w/img/${cfg}.json"
  printf '[{"Config":"%s.json","RepoTags":["%s"],"Layers":["%s/layer.tar"]}]' "$cfg" "$name" "$diff" > "$w/img/manifest.json"
  tar --sort=name --mtime=@0 --owner=0 --group=0 -C "$w/img" -cf "$out.tmp" . && mv "$out.tmp" "$out"
  rm -rf "$w"
}

ensure_host_packages() {
  local need=()
  command -v containerd >/dev/null || need+=(containerd)
  command -v runc >/dev/null || need+=(runc)
  [ -x "${CNI_BIN_DIR}/bridge" ] || need+=(containernetworking-plugins)
  command -v iptables >/dev/null || need+=(iptables)
  command -v conntrack >/dev/null || need+=(conntrack)
  command -v openssl >/dev/null || need+=(openssl)
  [ ${#need[@]} -eq 0 ] && return 0
  log "apt-get install ${need[*]}"
  apt_install "${need[@]}" || die "apt-get install ${need[*]} failed"
}

cmd_build() {
  mkdir -p "$BIN"
  ensure_host_packages
  build_etcd
  build_pause
  build_k8s
  build_crictl
}

