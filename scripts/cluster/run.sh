# shellcheck shell=bash
# scripts/cluster/run.sh — sourced by scripts/cluster.sh: the configs rendered from the data
# files beside this one, the processes (containerd, etcd, kube-apiserver, kube-controller-manager,
# kube-scheduler, kube-proxy, kubelet) with their pid files under ${RUN} and logs under ${LOGS},
# and the commands start, stop, status, env, import-image, delete (kind.sh instead for TIZI_CLUSTER=kind).

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
alive() { pidfile_alive "${RUN}/$1.pid"; }   # alive NAME (zombies count as dead)

spawn() {  # spawn NAME CMD... — background daemon with pid file and log; no-op when alive
  local name="$1"; shift
  if alive "$name"; then log "${name} already running (pid $(cat "${RUN}/${name}.pid"))"; return 0; fi
  mkdir -p "$LOGS" "$RUN"
  setsid nohup "$@" >>"${LOGS}/${name}.log" 2>&1 < /dev/null &
  echo $! > "${RUN}/${name}.pid"
  log "started ${name} (pid $!, log ${LOGS}/${name}.log)"
}

halt() { stop_pidfile "${RUN}/$1.pid" "$1" "${2:-15}"; }   # halt NAME [TIMEOUT_S]

wait_for() {  # wait_for DESC TIMEOUT_S CMD...
  local desc="$1" t="$2"; shift 2
  poll $(( t * 4 )) 0.25 "$@" || die "${desc}: timed out after ${t}s"
  log "${desc}: ok"
}

kc() { "${BIN}/kubectl" --kubeconfig "${STATE}/kubeconfigs/admin.kubeconfig" "$@"; }
ctr_() { ctr --address "$CTRD_SOCK" "$@"; }

# node_ready NODE SINCE KUBECTL... — Ready, and reported by the kubelet started at SINCE or
# later (after a restart the stored status is stale; an empty SINCE accepts any report).
# Both cluster flavours use it, each with its own kubectl (kc here, kkc in kind.sh).
node_ready() {
  local node="$1" since="$2" out st hb; shift 2
  out="$("$@" get node "$node" -o \
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
    --requestheader-client-ca-file "${PKI}/front-proxy-ca.crt" \
    --requestheader-allowed-names front-proxy-client \
    --requestheader-username-headers X-Remote-User --requestheader-group-headers X-Remote-Group \
    --requestheader-extra-headers-prefix X-Remote-Extra- \
    --proxy-client-cert-file "${PKI}/front-proxy-client.crt" \
    --proxy-client-key-file "${PKI}/front-proxy-client.key" \
    --enable-aggregator-routing=true \
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

# ----------------------------------------------------------------------------- commands
# Which cluster `start` makes: TIZI_CLUSTER=kind (the default: kind.sh) or parts (this file).
flavour() {
  case "${TIZI_CLUSTER:-kind}" in
    kind|parts) echo "${TIZI_CLUSTER:-kind}" ;;
    *) die "TIZI_CLUSTER=${TIZI_CLUSTER}: expected kind (kind's CLI and tizi's node image) or parts (processes on this host)" ;;
  esac
}
# The flavour `start` last made (import-image, images, stop and status act on that one).
running_flavour() { if [ "$(cat "${CACHE}/cluster-flavour" 2>/dev/null)" = kind ]; then echo kind; else echo parts; fi; }

cmd_start() {
  if [ "$(flavour)" = kind ]; then kind_start; return; fi
  if [ "$(running_flavour)" = kind ]; then log "deleting the kind cluster (one cluster at a time)"; kind_stop; fi
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
  wait_for "node ${NODE_NAME} Ready" 90 node_ready "$NODE_NAME" "$since" kc
  echo parts > "${CACHE}/cluster-flavour"
  log "cluster up: $(cmd_env)"
}

cleanup_pods() {
  # pod sandboxes through the CRI first: CNI DEL releases IPs and iptables rules (kubelet is already stopped)
  if [ -S "$CTRD_SOCK" ] && [ -x "${BIN}/crictl" ] && ctr_ version >/dev/null 2>&1; then
    local crictl=("${BIN}/crictl" --config "${STATE}/config/crictl.yaml")
    if [ -n "$("${crictl[@]}" pods -q 2>/dev/null)" ]; then
      # shellcheck disable=SC2046  # one argument per pod id
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
    # shellcheck disable=SC2086  # one argument per container id
    [ -n "$ids" ] && { ctr_ -n k8s.io containers rm $ids >/dev/null 2>&1 || true; }
    [ -n "$ids" ] && log "removed $(echo "$ids" | wc -w) containers"
  fi
  # mounts left by the kubelet and the CRI, pod network namespaces, IP leases
  local m
  # shellcheck disable=SC2013  # mount points here have no spaces
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
  if [ "$(running_flavour)" = kind ]; then kind_stop; else cmd_stop_parts; fi
}

cmd_stop_parts() {
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
  if [ "$(running_flavour)" = kind ]; then
    printf '%-24s %s\n' "kind node ${KIND_NODE}" "$(docker inspect -f '{{.State.Status}} ({{.Config.Image}})' "$KIND_NODE" 2>/dev/null || echo absent)"
  else
  for c in containerd etcd kube-apiserver kube-controller-manager kube-scheduler kube-proxy kubelet; do
    if alive "$c"; then printf '%-24s running (pid %s)\n' "$c" "$(cat "${RUN}/${c}.pid")"
    else printf '%-24s stopped\n' "$c"; fi
  done
  fi
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
  if [ "$(running_flavour)" = kind ]; then kind_import "$image"; return; fi
  ctr_ version >/dev/null 2>&1 || die "containerd is not running (scripts/cluster.sh start)"
  if [ -f "$image" ]; then
    ctr_ -n k8s.io images import "$image"
  else
    docker save "$image" | ctr_ -n k8s.io images import -
  fi
  log "imported ${image} into containerd namespace k8s.io"
}

# REF DIGEST of each image the node's containerd holds (namespace k8s.io)
cmd_images() {
  if [ "$(running_flavour)" = kind ]; then kind_images; return; fi
  ctr_ -n k8s.io images ls 2>/dev/null | awk 'NR > 1 { print $1, $3 }'
}

cmd_delete() {
  cmd_stop
  log "removing cluster state ${STATE} (caches kept)"
  rm -rf "${STATE:?}/etcd" "${STATE:?}/kubelet" "${STATE:?}/containerd" "${STATE:?}/pki" "${STATE:?}/logs"
}
