#!/usr/bin/env bash
# scripts/cluster.sh — a real single-node Kubernetes cluster built offline from
# upstream components (see scripts/CLUSTER.md).
#
#   scripts/cluster.sh start|stop|status|env|build|import-image IMAGE|FILE.tar|knative-crds|selftest|delete|logs [COMPONENT]
#
# Builds are cached outside the clone under ${TIZI_CACHE:-$HOME/.cache/tizi}/k8s/<version>/,
# Go caches under ${TIZI_CACHE}/go/, runtime state under /var/lib/tizi-cluster and /run/tizi-cluster.
set -euo pipefail

K8S_VERSION="${TIZI_K8S_VERSION:-v1.34.4}"
ETCD_DEB_VERSION_HINT="3.5"            # sid's etcd-server package (dpkg -x, never installed)
KNATIVE_VERSION="${TIZI_KNATIVE_VERSION:-v0.51.0}"
CACHE="${TIZI_CACHE:-$HOME/.cache/tizi}"
CONTEXT="${TIZI_KUBE_CONTEXT:-kind-tizi}"
NODE_NAME="${TIZI_NODE_NAME:-tizi-node}"
NODE_REGION="${TIZI_NODE_REGION:-ma-benguerir}"
KUBECONFIG_OUT="${CACHE}/kubeconfig"
KDIR="${CACHE}/k8s/${K8S_VERSION}"
BIN="${KDIR}/bin"
STATE="${TIZI_CLUSTER_STATE:-/var/lib/tizi-cluster}"
RUN="${TIZI_CLUSTER_RUN:-/run/tizi-cluster}"
LOGS="${STATE}/logs"
PKI="${STATE}/pki"
CTRD_SOCK="${RUN}/containerd.sock"
PAUSE_IMAGE="registry.k8s.io/pause:3.10"
SERVICE_CIDR="10.96.0.0/16"
POD_CIDR="10.244.0.0/24"
API_PORT=6443
CLUSTER_DNS="10.96.0.10"               # nothing listens there (no CoreDNS); harmless
CNI_BIN_DIR="/usr/lib/cni"             # Debian's containernetworking-plugins
HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
TEMPLATES="${HERE}/cluster"

export GOMODCACHE="${CACHE}/go/mod"
export GOCACHE="${CACHE}/go/build"
export GOTOOLCHAIN=local
export GOFLAGS="-buildvcs=false"

t0="${EPOCHREALTIME/[.,]/}"
elapsed() { local n="${EPOCHREALTIME/[.,]/}"; printf '%d.%d' $(( (n - t0) / 1000000 )) $(( (n - t0) / 100000 % 10 )); }
log() { printf '[cluster %6ss] %s\n' "$(elapsed)" "$*" >&2; }
die() { log "ERROR: $*"; exit 1; }

# ----------------------------------------------------------------------------- build
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
  kmod="$(cd /tmp && go mod download -json "k8s.io/kubernetes@${K8S_VERSION}" | sed -n 's/.*"GoMod": "\(.*\)".*/\1/p')"
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
  for c in kube-apiserver kube-controller-manager kube-scheduler kube-proxy kubelet kubectl; do
    pkgs+=("k8s.io/kubernetes/cmd/${c}@${K8S_VERSION}")
  done
  (cd "$src" && go get "${pkgs[@]}") || die "go get failed"
  touch "${src}/.ready"
}

build_k8s() {
  mkdir -p "$BIN"
  local want=(kube-apiserver kube-controller-manager kube-scheduler kube-proxy kubectl kubelet) missing=() c
  for c in "${want[@]}"; do [ -x "${BIN}/${c}" ] || missing+=("$c"); done
  [ ${#missing[@]} -eq 0 ] && return 0
  k8s_module
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
  local ax="${CACHE}/aptx" d
  mkdir -p "${ax}/lists/partial" "${ax}/archives/partial"
  printf 'deb http://deb.debian.org/debian sid main\n' > "${ax}/sources.list"
  local o=(-o "Dir::Etc::SourceList=${ax}/sources.list" -o Dir::Etc::SourceParts=/dev/null
           -o "Dir::State::Lists=${ax}/lists" -o "Dir::Cache::Archives=${ax}/archives" -o APT::Sandbox::User=root)
  if ! ls "${ax}"/lists/*sid*Packages* >/dev/null 2>&1; then
    apt-get "${o[@]}" update -qq >/dev/null || die "apt-get update (sid) failed"
  fi
  d="$(mktemp -d)"
  (cd "$d" && apt-get "${o[@]}" download -qq etcd-server >/dev/null) || die "apt-get download etcd-server failed"
  dpkg -x "$d"/etcd-server_*.deb "$d/x"
  cp "$d/x/usr/bin/etcd" "${BIN}/etcd.tmp" && mv "${BIN}/etcd.tmp" "${BIN}/etcd"
  basename "$d"/etcd-server_*.deb > "${BIN}/etcd.deb"
  rm -rf "$d"
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
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null \
    || die "apt-get install ${need[*]} failed"
}

cmd_build() {
  mkdir -p "$BIN"
  ensure_host_packages
  build_etcd
  build_pause
  build_k8s
  build_crictl
}

# ----------------------------------------------------------------------------- pki
node_ip() {
  if [ -n "${TIZI_NODE_IP:-}" ]; then echo "$TIZI_NODE_IP"; return; fi
  local ip
  ip="$(ip -4 route get 1.1.1.1 2>/dev/null | sed -n 's/.* src \([0-9.]*\).*/\1/p' | head -1)"
  echo "${ip:-127.0.0.1}"
}

# cert NAME CN O SANS — a key + a certificate signed by the cluster CA
cert() {
  local name="$1" cn="$2" org="$3" sans="$4" subj="/CN=$2"
  [ -f "${PKI}/${name}.crt" ] && return 0
  [ -n "$org" ] && subj="/O=${org}/CN=${cn}"
  openssl genrsa -out "${PKI}/${name}.key" 2048 2>/dev/null
  openssl req -new -key "${PKI}/${name}.key" -subj "$subj" -out "${PKI}/${name}.csr" 2>/dev/null
  {
    echo "basicConstraints=critical,CA:FALSE"
    echo "keyUsage=critical,digitalSignature,keyEncipherment"
    if [ -n "$sans" ]; then echo "extendedKeyUsage=serverAuth,clientAuth"; echo "subjectAltName=${sans}"
    else echo "extendedKeyUsage=clientAuth"; fi
  } > "${PKI}/${name}.ext"
  openssl x509 -req -in "${PKI}/${name}.csr" -CA "${PKI}/ca.crt" -CAkey "${PKI}/ca.key" -CAcreateserial \
    -days 3650 -sha256 -extfile "${PKI}/${name}.ext" -out "${PKI}/${name}.crt" 2>/dev/null
  rm -f "${PKI}/${name}.csr" "${PKI}/${name}.ext"
}

make_pki() {
  local ip="$1"
  mkdir -p "$PKI"; chmod 700 "$PKI"
  # a change of node IP or name invalidates the serving certificates
  if [ "$(cat "${PKI}/.identity" 2>/dev/null)" != "${ip} ${NODE_NAME}" ]; then
    rm -f "${PKI}/apiserver.crt" "${PKI}/kubelet.crt" "${PKI}/kubelet-client.crt"
  fi
  if [ ! -f "${PKI}/ca.crt" ]; then
    log "generating certificates in ${PKI}"
    openssl genrsa -out "${PKI}/ca.key" 2048 2>/dev/null
    openssl req -x509 -new -nodes -key "${PKI}/ca.key" -subj "/CN=tizi-kubernetes-ca" -days 3650 -sha256 \
      -addext "basicConstraints=critical,CA:TRUE" -addext "keyUsage=critical,keyCertSign,cRLSign,digitalSignature" \
      -out "${PKI}/ca.crt" 2>/dev/null
  fi
  local svc_ip="10.96.0.1"
  cert apiserver kube-apiserver "" \
    "IP:127.0.0.1,IP:${svc_ip},IP:${ip},DNS:localhost,DNS:${NODE_NAME},DNS:kubernetes,DNS:kubernetes.default,DNS:kubernetes.default.svc,DNS:kubernetes.default.svc.cluster.local"
  cert admin kubernetes-admin system:masters ""
  cert apiserver-kubelet-client kube-apiserver-kubelet-client system:masters ""
  cert controller-manager system:kube-controller-manager "" ""
  cert scheduler system:kube-scheduler "" ""
  cert kube-proxy system:kube-proxy system:node-proxier ""
  cert kubelet-client "system:node:${NODE_NAME}" system:nodes ""
  cert kubelet "$NODE_NAME" "" "IP:127.0.0.1,IP:${ip},DNS:${NODE_NAME},DNS:localhost"
  if [ ! -f "${PKI}/sa.key" ]; then
    openssl genrsa -out "${PKI}/sa.key" 2048 2>/dev/null
    openssl rsa -in "${PKI}/sa.key" -pubout -out "${PKI}/sa.pub" 2>/dev/null
  fi
  echo "${ip} ${NODE_NAME}" > "${PKI}/.identity"
}

# kubeconfig FILE CERTNAME CONTEXT EMBED(0|1)
kubeconfig() {
  local f="$1" c="$2" ctx="$3" embed="$4" tmp="$1.tmp"
  local server="https://127.0.0.1:${API_PORT}"
  if [ "$embed" = 1 ]; then
    cat > "$tmp" <<EOF
apiVersion: v1
kind: Config
clusters:
- name: ${ctx}
  cluster:
    server: ${server}
    certificate-authority-data: $(base64 -w0 "${PKI}/ca.crt")
users:
- name: ${ctx}
  user:
    client-certificate-data: $(base64 -w0 "${PKI}/${c}.crt")
    client-key-data: $(base64 -w0 "${PKI}/${c}.key")
contexts:
- name: ${ctx}
  context:
    cluster: ${ctx}
    user: ${ctx}
current-context: ${ctx}
EOF
  else
    cat > "$tmp" <<EOF
apiVersion: v1
kind: Config
clusters:
- name: tizi
  cluster:
    server: ${server}
    certificate-authority: ${PKI}/ca.crt
users:
- name: ${c}
  user:
    client-certificate: ${PKI}/${c}.crt
    client-key: ${PKI}/${c}.key
contexts:
- name: tizi
  context:
    cluster: tizi
    user: ${c}
current-context: tizi
EOF
  fi
  chmod 600 "$tmp"; mv "$tmp" "$f"
}

render() {  # render TEMPLATE OUT
  sed -e "s#@STATE@#${STATE}#g" -e "s#@RUN@#${RUN}#g" -e "s#@CTRD_SOCK@#${CTRD_SOCK}#g" \
      -e "s#@PAUSE_IMAGE@#${PAUSE_IMAGE}#g" -e "s#@CNI_BIN_DIR@#${CNI_BIN_DIR}#g" \
      -e "s#@POD_CIDR@#${POD_CIDR}#g" -e "s#@PKI@#${PKI}#g" -e "s#@CLUSTER_DNS@#${CLUSTER_DNS}#g" \
      -e "s#@NODE_NAME@#${NODE_NAME}#g" "$1" > "$2.tmp"
  mv "$2.tmp" "$2"
}

write_configs() {
  local ip="$1"
  mkdir -p "${STATE}/kubeconfigs" "${STATE}/cni/net.d" "${STATE}/config" "$LOGS" "$RUN" "$(dirname "$KUBECONFIG_OUT")"
  kubeconfig "$KUBECONFIG_OUT" admin "$CONTEXT" 1
  kubeconfig "${STATE}/kubeconfigs/admin.kubeconfig" admin tizi 0
  kubeconfig "${STATE}/kubeconfigs/controller-manager.kubeconfig" controller-manager tizi 0
  kubeconfig "${STATE}/kubeconfigs/scheduler.kubeconfig" scheduler tizi 0
  kubeconfig "${STATE}/kubeconfigs/kube-proxy.kubeconfig" kube-proxy tizi 0
  kubeconfig "${STATE}/kubeconfigs/kubelet.kubeconfig" kubelet-client tizi 0
  render "${TEMPLATES}/containerd.toml" "${STATE}/config/containerd.toml"
  render "${TEMPLATES}/10-tizi.conflist" "${STATE}/cni/net.d/10-tizi.conflist"
  render "${TEMPLATES}/kubelet.yaml" "${STATE}/config/kubelet.yaml"
  render "${TEMPLATES}/kube-proxy.yaml" "${STATE}/config/kube-proxy.yaml"
  printf 'runtime-endpoint: unix://%s\nimage-endpoint: unix://%s\ntimeout: 20\n' "$CTRD_SOCK" "$CTRD_SOCK" \
    > "${STATE}/config/crictl.yaml"
}

host_prep() {
  [ -d /proc/sys/net/bridge ] || modprobe br_netfilter 2>/dev/null || true
  [ -d /proc/sys/net/bridge ] || die "br_netfilter is not available (no /proc/sys/net/bridge)"
  local kv
  for kv in net.bridge.bridge-nf-call-iptables=1 net.bridge.bridge-nf-call-ip6tables=1 net.ipv4.ip_forward=1 \
            net.ipv4.conf.all.route_localnet=1; do
    sysctl -qw "$kv" >/dev/null 2>&1 || log "warning: sysctl -w $kv failed"
  done
  local c
  for c in cpu cpuacct cpuset memory pids; do
    grep -qE "^cgroup[2]? [^ ]+ cgroup[2]? [^ ]*\b${c}\b" /proc/mounts \
      || grep -qE " cgroup2 " /proc/mounts || die "cgroup controller ${c} is not mounted"
  done
}

# ----------------------------------------------------------------------------- processes
# PID 1 on this VM does not reap orphans: a zombie must count as dead
pid_alive() { local st; st="$(cut -d' ' -f3 "/proc/$1/stat" 2>/dev/null)" && [ -n "$st" ] && [ "$st" != Z ] && [ "$st" != X ]; }
alive() { local p; p="$(cat "${RUN}/$1.pid" 2>/dev/null)" && [ -n "$p" ] && pid_alive "$p"; }

spawn() {  # spawn NAME CMD... — background daemon with pid file and log; no-op when alive
  local name="$1"; shift
  if alive "$name"; then log "${name} already running (pid $(cat "${RUN}/${name}.pid"))"; return 0; fi
  mkdir -p "$LOGS" "$RUN"
  setsid nohup "$@" >>"${LOGS}/${name}.log" 2>&1 < /dev/null &
  echo $! > "${RUN}/${name}.pid"
  log "started ${name} (pid $!, log ${LOGS}/${name}.log)"
}

halt() {  # halt NAME [TIMEOUT_S]
  local name="$1" t="${2:-15}" p i
  p="$(cat "${RUN}/${name}.pid" 2>/dev/null)" || return 0
  if [ -n "$p" ] && pid_alive "$p"; then
    kill -TERM "$p" 2>/dev/null || true
    for ((i = 0; i < t * 10; i++)); do pid_alive "$p" || break; sleep 0.1; done
    pid_alive "$p" && { kill -KILL "$p" 2>/dev/null || true; sleep 0.2; }
    log "stopped ${name}"
  fi
  rm -f "${RUN}/${name}.pid"
}

wait_for() {  # wait_for DESC TIMEOUT_S CMD...
  local desc="$1" t="$2" i; shift 2
  for ((i = 0; i < t * 4; i++)); do
    if "$@" >/dev/null 2>&1; then log "${desc}: ok"; return 0; fi
    sleep 0.25
  done
  die "${desc}: timed out after ${t}s"
}

kc() { "${BIN}/kubectl" --kubeconfig "${STATE}/kubeconfigs/admin.kubeconfig" "$@"; }
ctr_() { ctr --address "$CTRD_SOCK" "$@"; }

# Ready, and reported by the kubelet started now (after a restart the stored status is stale)
node_ready() {
  local since="${1:-}" out st hb
  out="$(kc get node "$NODE_NAME" -o \
    'jsonpath={.status.conditions[?(@.type=="Ready")].status} {.status.conditions[?(@.type=="Ready")].lastHeartbeatTime}' 2>/dev/null)" || return 1
  st="${out%% *}"; hb="${out#* }"
  [ "$st" = True ] && { [ -z "$since" ] || [[ ! "$hb" < "$since" ]]; }
}

start_containerd() {
  spawn containerd containerd --config "${STATE}/config/containerd.toml"
  wait_for "containerd" 30 ctr_ version
  if ! ctr_ -n k8s.io images ls -q 2>/dev/null | grep -qxF "$PAUSE_IMAGE"; then
    ctr_ -n k8s.io images import "${KDIR}/pause.tar" >/dev/null
    log "imported ${PAUSE_IMAGE} into containerd (k8s.io)"
  fi
}

start_etcd() {
  spawn etcd "${BIN}/etcd" --name tizi --data-dir "${STATE}/etcd" \
    --listen-client-urls http://127.0.0.1:12379 --advertise-client-urls http://127.0.0.1:12379 \
    --listen-peer-urls http://127.0.0.1:12380 --initial-advertise-peer-urls http://127.0.0.1:12380 \
    --initial-cluster tizi=http://127.0.0.1:12380 --listen-metrics-urls http://127.0.0.1:12381 \
    --unsafe-no-fsync --quota-backend-bytes 2147483648 --log-level warn
}

start_apiserver() {
  local ip="$1"
  spawn kube-apiserver "${BIN}/kube-apiserver" \
    --advertise-address "$ip" --bind-address 0.0.0.0 --secure-port "$API_PORT" \
    --etcd-servers http://127.0.0.1:12379 \
    --allow-privileged=true --authorization-mode Node,RBAC \
    --client-ca-file "${PKI}/ca.crt" \
    --tls-cert-file "${PKI}/apiserver.crt" --tls-private-key-file "${PKI}/apiserver.key" \
    --kubelet-client-certificate "${PKI}/apiserver-kubelet-client.crt" \
    --kubelet-client-key "${PKI}/apiserver-kubelet-client.key" \
    --kubelet-certificate-authority "${PKI}/ca.crt" --kubelet-preferred-address-types InternalIP,Hostname \
    --service-account-issuer https://kubernetes.default.svc.cluster.local \
    --service-account-key-file "${PKI}/sa.pub" --service-account-signing-key-file "${PKI}/sa.key" \
    --service-cluster-ip-range "$SERVICE_CIDR" --service-node-port-range 30000-32767 \
    --enable-admission-plugins PodSecurity \
    --profiling=false --v=1
}

start_control_plane_rest() {
  spawn kube-controller-manager "${BIN}/kube-controller-manager" \
    --kubeconfig "${STATE}/kubeconfigs/controller-manager.kubeconfig" \
    --authentication-kubeconfig "${STATE}/kubeconfigs/controller-manager.kubeconfig" \
    --authorization-kubeconfig "${STATE}/kubeconfigs/controller-manager.kubeconfig" \
    --bind-address 127.0.0.1 --leader-elect=false --use-service-account-credentials=true \
    --cluster-signing-cert-file "${PKI}/ca.crt" --cluster-signing-key-file "${PKI}/ca.key" \
    --root-ca-file "${PKI}/ca.crt" --service-account-private-key-file "${PKI}/sa.key" \
    --service-cluster-ip-range "$SERVICE_CIDR" --cluster-cidr "$POD_CIDR" --allocate-node-cidrs=false \
    --profiling=false --v=1
  spawn kube-scheduler "${BIN}/kube-scheduler" \
    --kubeconfig "${STATE}/kubeconfigs/scheduler.kubeconfig" \
    --authentication-kubeconfig "${STATE}/kubeconfigs/scheduler.kubeconfig" \
    --authorization-kubeconfig "${STATE}/kubeconfigs/scheduler.kubeconfig" \
    --bind-address 127.0.0.1 --leader-elect=false --profiling=false --v=1
  spawn kube-proxy "${BIN}/kube-proxy" --config "${STATE}/config/kube-proxy.yaml" --v=1
}

start_kubelet() {
  local ip="$1"
  mkdir -p "${STATE}/kubelet"
  spawn kubelet "${BIN}/kubelet" \
    --config "${STATE}/config/kubelet.yaml" \
    --kubeconfig "${STATE}/kubeconfigs/kubelet.kubeconfig" \
    --root-dir "${STATE}/kubelet" --cert-dir "${STATE}/kubelet/pki" \
    --hostname-override "$NODE_NAME" --node-ip "$ip" \
    --node-labels "topology.kubernetes.io/region=${NODE_REGION}" \
    --pod-infra-container-image "$PAUSE_IMAGE" --v=1
}

# ----------------------------------------------------------------------------- kind branch
kind_available() {
  [ "${TIZI_CLUSTER_NO_KIND:-}" = 1 ] && return 1
  command -v kind >/dev/null 2>&1 && command -v docker >/dev/null 2>&1 || return 1
  local img; img="$(docker image ls --format '{{.Repository}}:{{.Tag}}' kindest/node 2>/dev/null | head -1)"
  [ -n "$img" ] && docker image inspect "$img" >/dev/null 2>&1 && echo "$img"
}

kind_start() {
  local img="$1"
  if ! kind get clusters 2>/dev/null | grep -qx tizi; then
    log "kind create cluster --name tizi --image ${img}"
    kind create cluster --name tizi --image "$img" --wait 120s
  fi
  mkdir -p "$(dirname "$KUBECONFIG_OUT")"
  kind get kubeconfig --name tizi | sed "s/kind-tizi/${CONTEXT}/g" > "$KUBECONFIG_OUT"
  local n; n="$(KUBECONFIG="$KUBECONFIG_OUT" kubectl get nodes -o name | head -1)"
  KUBECONFIG="$KUBECONFIG_OUT" kubectl label --overwrite "$n" "topology.kubernetes.io/region=${NODE_REGION}" >/dev/null
  echo kind > "${CACHE}/cluster-kind"
  log "kind cluster tizi ready"
}

# ----------------------------------------------------------------------------- commands
cmd_start() {
  local img
  if img="$(kind_available)"; then kind_start "$img"; return; fi
  [ "$(id -u)" = 0 ] || die "must run as root (containerd, kubelet, iptables)"
  cmd_build
  host_prep
  local ip; ip="$(node_ip)"
  log "node ${NODE_NAME} ip ${ip} region ${NODE_REGION} (Kubernetes ${K8S_VERSION})"
  make_pki "$ip"
  write_configs "$ip"
  local since; since="$(date -u +%Y-%m-%dT%H:%M:%SZ)"
  alive kubelet && since=""
  start_etcd
  start_containerd
  start_kubelet "$ip"          # retries until the API server answers
  start_apiserver "$ip"
  wait_for "etcd" 30 curl -sf http://127.0.0.1:12379/health
  wait_for "kube-apiserver /readyz" 90 kc get --raw /readyz
  start_control_plane_rest
  wait_for "node ${NODE_NAME} registered" 60 kc get node "$NODE_NAME"
  kc label --overwrite node "$NODE_NAME" "topology.kubernetes.io/region=${NODE_REGION}" >/dev/null
  wait_for "node ${NODE_NAME} Ready" 90 node_ready "$since"
  log "cluster up: $(cmd_env)"
}

cleanup_pods() {
  # pod sandboxes through the CRI first: CNI DEL releases IPs and iptables rules (kubelet is already stopped)
  if [ -S "$CTRD_SOCK" ] && [ -x "${BIN}/crictl" ] && ctr_ version >/dev/null 2>&1; then
    local crictl=("${BIN}/crictl" --config "${STATE}/config/crictl.yaml")
    if [ -n "$("${crictl[@]}" pods -q 2>/dev/null)" ]; then
      "${crictl[@]}" stopp $("${crictl[@]}" pods -q) >/dev/null 2>&1 || true
      "${crictl[@]}" rmp -a -f >/dev/null 2>&1 || true
      log "removed pod sandboxes (crictl)"
    fi
  fi
  # anything left over (containers and sandboxes)
  if [ -S "$CTRD_SOCK" ] && ctr_ version >/dev/null 2>&1; then
    local ids id
    ids="$(ctr_ -n k8s.io tasks ls -q 2>/dev/null || true)"
    for id in $ids; do ctr_ -n k8s.io tasks kill -s SIGKILL "$id" >/dev/null 2>&1 || true; done
    for id in $ids; do
      for _ in 1 2 3 4 5 6 7 8 9 10; do
        ctr_ -n k8s.io tasks delete -f "$id" >/dev/null 2>&1 && break; sleep 0.2
      done
    done
    ids="$(ctr_ -n k8s.io containers ls -q 2>/dev/null || true)"
    [ -n "$ids" ] && { ctr_ -n k8s.io containers rm $ids >/dev/null 2>&1 || true; }
    [ -n "$ids" ] && log "removed $(echo "$ids" | wc -w) containers"
  fi
  # mounts left by the kubelet and the CRI, pod network namespaces, IP leases
  local m
  for m in $(awk -v s="${STATE}/" -v r="${RUN}/" '$2 ~ "^"s || $2 ~ "^"r {print $2}' /proc/mounts | sort -r); do
    umount "$m" 2>/dev/null || umount -l "$m" 2>/dev/null || true
  done
  for m in /var/run/netns/cni-*; do
    [ -e "$m" ] || continue
    umount "$m" 2>/dev/null || true; rm -f "$m"
  done
  rm -rf "${STATE}/cni/ipam"
  ip link del tizi0 2>/dev/null || true
  # iptables chains of the kubelet and of pods whose CNI DEL did not run
  local t c
  for t in filter nat mangle; do
    iptables -t "$t" -S 2>/dev/null | grep -E '^-A .*(-j KUBE-FIREWALL|name: \\"tizi\\")' | sed 's/^-A/-D/' |
      while read -r rule; do eval "iptables -t $t $rule" 2>/dev/null || true; done || true
    for c in $(iptables -t "$t" -S 2>/dev/null | grep -oE '^-N KUBE-(FIREWALL|KUBELET-CANARY|IPTABLES-HINT)$' | cut -d' ' -f2); do
      iptables -t "$t" -F "$c" 2>/dev/null; iptables -t "$t" -X "$c" 2>/dev/null || true
    done
  done
  local pfx="${POD_CIDR%.*}."   # firewall-plugin rules for our pod IPs (CNI-FORWARD itself may be shared)
  iptables -S CNI-FORWARD 2>/dev/null | grep -F -- " ${pfx}" | grep -E -- "-[sd] ${pfx//./\\.}[0-9]+/32" |
    sed 's/^-A/-D/' | while read -r rule; do eval "iptables $rule" 2>/dev/null || true; done || true
  for c in $(iptables -t nat -S 2>/dev/null | grep -oE '^-N CNI-[0-9a-f]{24}$' | cut -d' ' -f2); do
    iptables -t nat -S POSTROUTING 2>/dev/null | grep -q -- "-j ${c}\$" && continue   # still referenced: not ours to drop
    iptables -t nat -F "$c" 2>/dev/null; iptables -t nat -X "$c" 2>/dev/null || true
  done
}

cmd_stop() {
  if [ "$(cat "${CACHE}/cluster-kind" 2>/dev/null)" = kind ] && command -v kind >/dev/null 2>&1; then
    kind delete cluster --name tizi; rm -f "${CACHE}/cluster-kind"; return
  fi
  halt kubelet 20
  halt kube-scheduler
  halt kube-controller-manager
  halt kube-proxy
  cleanup_pods
  if [ -x "${BIN}/kube-proxy" ]; then
    "${BIN}/kube-proxy" --cleanup >/dev/null 2>&1 || true   # removes the KUBE-* iptables chains
  fi
  halt kube-apiserver
  halt etcd
  halt containerd
  log "stopped (caches in ${KDIR}, state in ${STATE})"
}

cmd_status() {
  local c rc=0
  for c in containerd etcd kube-apiserver kube-controller-manager kube-scheduler kube-proxy kubelet; do
    if alive "$c"; then printf '%-24s running (pid %s)\n' "$c" "$(cat "${RUN}/${c}.pid")"
    else printf '%-24s stopped\n' "$c"; fi
  done
  local k="${BIN}/kubectl"; [ -x "$k" ] || k=kubectl
  if "$k" --kubeconfig "$KUBECONFIG_OUT" --context "$CONTEXT" --request-timeout 5s get --raw /readyz >/dev/null 2>&1; then
    echo "api server: ready ($("$k" --kubeconfig "$KUBECONFIG_OUT" --context "$CONTEXT" version -o json 2>/dev/null | sed -n '/serverVersion/,/}/s/.*"gitVersion": "\(.*\)".*/\1/p'))"
  else
    echo "api server: not answering"; return 1
  fi
  "$k" --kubeconfig "$KUBECONFIG_OUT" --context "$CONTEXT" get nodes -L topology.kubernetes.io/region 2>/dev/null || rc=1
  local ready
  ready="$("$k" --kubeconfig "$KUBECONFIG_OUT" --context "$CONTEXT" get nodes \
    -o 'jsonpath={range .items[*]}{.status.conditions[?(@.type=="Ready")].status}{"\n"}{end}' 2>/dev/null)"
  echo "$ready" | grep -qx True || rc=1
  return "$rc"
}

cmd_env() {
  echo "export KUBECONFIG=${KUBECONFIG_OUT} TIZI_KUBE_CONTEXT=${CONTEXT} PATH=\"${BIN}:\$PATH\""
}

cmd_import_image() {
  local image="${1:-}"
  [ -n "$image" ] || die "usage: $0 import-image IMAGE|FILE.tar"
  if [ "$(cat "${CACHE}/cluster-kind" 2>/dev/null)" = kind ]; then kind load docker-image --name tizi "$image"; return; fi
  ctr_ version >/dev/null 2>&1 || die "containerd is not running (scripts/cluster.sh start)"
  if [ -f "$image" ]; then
    ctr_ -n k8s.io images import "$image"
  else
    docker save "$image" | ctr_ -n k8s.io images import -
  fi
  log "imported ${image} into containerd namespace k8s.io"
}

cmd_knative_crds() {
  local d="${CACHE}/knative/${KNATIVE_VERSION}"
  if [ ! -f "${d}/.ready" ]; then
    log "downloading knative.dev/serving@${KNATIVE_VERSION} (Go module proxy)"
    local dir
    dir="$(cd /tmp && go mod download -json "knative.dev/serving@${KNATIVE_VERSION}" | sed -n 's/.*"Dir": "\(.*\)".*/\1/p')"
    [ -d "$dir/config/core/300-resources" ] || die "no config/core/300-resources in knative.dev/serving@${KNATIVE_VERSION}"
    mkdir -p "$d"
    cp "$dir"/config/core/300-resources/*.yaml "$d/"
    chmod u+w "$d"/*.yaml
    touch "${d}/.ready"
  fi
  "${BIN}/kubectl" --kubeconfig "$KUBECONFIG_OUT" --context "$CONTEXT" apply --server-side -f "$d" >/dev/null
  "${BIN}/kubectl" --kubeconfig "$KUBECONFIG_OUT" --context "$CONTEXT" wait --for condition=Established --timeout 60s \
    -f "$d" >/dev/null
  log "knative serving CRDs ${KNATIVE_VERSION} applied (validation only: no Knative controllers run)"
}

# A static Go HTTP server packed as tizi.local/echo:selftest (built in the cache, never committed).
build_echo_image() {
  local d="${KDIR}/selftest" out="${KDIR}/selftest/echo.tar"
  [ -f "$out" ] && return 0
  log "building the selftest image tizi.local/echo:selftest"
  mkdir -p "$d/src" "$d/root"
  cat > "$d/src/main.go" <<'EOF'
package main

import (
	"crypto/tls"
	"fmt"
	"io"
	"net/http"
	"os"
	"time"
)

func main() {
	if len(os.Args) == 3 && os.Args[1] == "get" { // in-pod HTTP client for the selftest
		c := &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{
			TLSClientConfig: &tls.Config{InsecureSkipVerify: true}}}
		r, err := c.Get(os.Args[2])
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(1)
		}
		b, _ := io.ReadAll(r.Body)
		fmt.Printf("%d %s\n", r.StatusCode, b)
		return
	}
	host, _ := os.Hostname()
	http.HandleFunc("/healthz", func(w http.ResponseWriter, r *http.Request) { fmt.Fprintln(w, "ok") })
	http.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) { fmt.Fprintf(w, "tizi echo from %s\n", host) })
	if err := http.ListenAndServe(":8080", nil); err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
}
EOF
  printf 'module tizi.local/echo\n\ngo 1.22\n' > "$d/src/go.mod"
  (cd "$d/src" && CGO_ENABLED=0 go build -trimpath -ldflags "-s -w" -o "$d/root/echo" .)
  pack_image "$d/root" tizi.local/echo:selftest '["/echo"]' "65532" "$out"
}

cmd_selftest() {
  local k=("${BIN}/kubectl" --kubeconfig "$KUBECONFIG_OUT" --context "$CONTEXT") fail=0
  check() { local d="$1"; shift; if "$@"; then log "PASS ${d}"; else log "FAIL ${d}"; fail=1; fi; }
  cmd_status >/dev/null || die "cluster is not ready (scripts/cluster.sh start)"
  build_echo_image
  cmd_import_image "${KDIR}/selftest/echo.tar" >/dev/null
  # fresh pods every run (a previous run's namespace may still be terminating)
  "${k[@]}" delete namespace tizi-selftest --ignore-not-found --wait=true --timeout 120s >/dev/null
  "${k[@]}" apply -f "${TEMPLATES}/selftest.yaml" >/dev/null
  check "restricted-compliant Deployment becomes Available" \
    "${k[@]}" -n tizi-selftest wait --for condition=Available deploy/echo --timeout 90s
  "${k[@]}" -n tizi-selftest get pods -o wide
  local err
  if err="$("${k[@]}" apply -f "${TEMPLATES}/selftest-bad-pod.yaml" 2>&1)"; then
    log "FAIL privileged pod was admitted"; fail=1
    "${k[@]}" delete -f "${TEMPLATES}/selftest-bad-pod.yaml" --wait=false >/dev/null 2>&1 || true
  else
    log "PASS privileged pod rejected: ${err}"
  fi
  local cip; cip="$("${k[@]}" -n tizi-selftest get svc echo -o 'jsonpath={.spec.clusterIP}')"
  check "ClusterIP ${cip}:80 reachable from the host (kube-proxy iptables)" \
    bash -c "for i in \$(seq 1 40); do curl -sf --max-time 2 http://${cip}/ && exit 0; sleep 0.5; done; exit 1"
  local pf_log; pf_log="$(mktemp)"
  "${k[@]}" -n tizi-selftest port-forward svc/echo 18080:80 >"$pf_log" 2>&1 &
  local pf=$!
  check "kubectl port-forward svc/echo 18080:80" \
    bash -c "for i in \$(seq 1 40); do curl -sf --max-time 2 http://127.0.0.1:18080/ && exit 0; sleep 0.5; done; exit 1"
  kill "$pf" 2>/dev/null || true; wait "$pf" 2>/dev/null || true; rm -f "$pf_log"
  check "kubectl logs" "${k[@]}" -n tizi-selftest logs deploy/echo --tail 1
  check "kubectl exec + pod -> own Service ClusterIP (hairpin)" \
    "${k[@]}" -n tizi-selftest exec deploy/echo -- /echo get "http://${cip}/"
  local pods; pods=($("${k[@]}" -n tizi-selftest get pods -l app=echo -o 'jsonpath={range .items[*]}{.metadata.name} {.status.podIP}{"\n"}{end}'))
  check "pod ${pods[0]} -> pod ${pods[3]:-?} directly (bridge, FORWARD chain)" \
    "${k[@]}" -n tizi-selftest exec "${pods[0]}" -- /echo get "http://${pods[3]:-none}:8080/"
  check "pod -> kubernetes API via ClusterIP 10.96.0.1:443" \
    "${k[@]}" -n tizi-selftest exec deploy/echo -- /echo get https://10.96.0.1/version
  if "${k[@]}" get crd services.serving.knative.dev >/dev/null 2>&1; then
    check "Knative Service server-side dry-run" \
      "${k[@]}" apply --dry-run=server -f "${TEMPLATES}/knative-service.yaml"
  else
    log "SKIP Knative dry-run (run scripts/cluster.sh knative-crds first)"
  fi
  [ "${TIZI_SELFTEST_KEEP:-}" = 1 ] || "${k[@]}" delete namespace tizi-selftest --wait=false >/dev/null
  return "$fail"
}

cmd_delete() {
  cmd_stop
  log "removing cluster state ${STATE} (caches kept)"
  rm -rf "${STATE:?}/etcd" "${STATE:?}/kubelet" "${STATE:?}/containerd" "${STATE:?}/pki" "${STATE:?}/logs"
}

case "${1:-}" in
  start) cmd_start ;;
  stop) cmd_stop ;;
  status) cmd_status ;;
  env) cmd_env ;;
  build) cmd_build ;;
  import-image) shift; cmd_import_image "$@" ;;
  knative-crds) cmd_knative_crds ;;
  delete) cmd_delete ;;
  selftest) cmd_selftest ;;
  logs) tail -n "${3:-100}" "${LOGS}/${2:-kubelet}.log" ;;
  *) echo "usage: $0 start|stop|status|env|build|import-image IMAGE|FILE.tar|knative-crds|selftest|delete|logs [COMPONENT]" >&2; exit 2 ;;
esac
