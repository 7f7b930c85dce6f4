# shellcheck shell=bash
# scripts/cluster/kind.sh — sourced by scripts/cluster.sh: the kind flavour of the test cluster.
#
# `kind create cluster --name tizi` with kind's own CLI (Debian sid's 0.33) and the node image
# scripts/kind/node-image.sh assembles offline. kindnet cannot be built here, so the cluster
# disables kind's default CNI and each node writes a bridge configuration itself
# (scripts/kind/node/rootfs/usr/local/bin/tizi-node-cni). The kubelets ask for serving
# certificates signed by the cluster CA (serverTLSBootstrap), approved here, so metrics-server
# verifies them as it does on the parts cluster; the API server reaches aggregated APIs
# (metrics-server) at their endpoints, as on the parts cluster: through the Service address it
# got empty 404s here. The control plane asks for less CPU (node image, /kind/tizi-patches): on
# a 2-core node kubeadm's 850m left too little for the tier's LLM pod.

KIND_CLUSTER=tizi
KIND_NODE="${KIND_CLUSTER}-control-plane"
KIND_DIR="${CACHE}/kind"
KIND_KUBECONFIG="${KIND_DIR}/kubeconfig"   # kind's own; KUBECONFIG_OUT gets a copy with ${CONTEXT}
KIND_POD_SUBNET="10.244.0.0/16"            # kind's default, written out: the host routes below use it

kind_cli() { "${SCRIPTS}/kind/node-image.sh" kind; }
kkc() { "${BIN}/kubectl" --kubeconfig "$KUBECONFIG_OUT" --context "$CONTEXT" "$@"; }

# The kind cluster's configuration: one control-plane node carrying the region label.
kind_config() {
  cat <<EOF
kind: Cluster
apiVersion: kind.x-k8s.io/v1alpha4
name: ${KIND_CLUSTER}
networking:
  disableDefaultCNI: true
  podSubnet: ${KIND_POD_SUBNET}
  serviceSubnet: ${SERVICE_CIDR}
kubeadmConfigPatches:
- |
  kind: KubeletConfiguration
  serverTLSBootstrap: true
- |
  kind: InitConfiguration
  patches:
    directory: /kind/tizi-patches
- |
  kind: ClusterConfiguration
  apiServer:
    extraArgs:
      enable-aggregator-routing: "true"
nodes:
- role: control-plane
  labels:
    topology.kubernetes.io/region: ${NODE_REGION}
EOF
}

kind_node_ip() { docker inspect -f '{{range .NetworkSettings.Networks}}{{.IPAddress}}{{end}}' "$KIND_NODE" 2>/dev/null; }

# Service and pod addresses reachable from this host through the node, as they are on the parts
# cluster (whose node is this host): the cluster tier calls ClusterIPs directly. kube-proxy in
# the node DNATs and masquerades traffic from outside the pod subnet, so replies come back.
kind_routes() {
  local ip; ip="$(kind_node_ip)"
  [ -n "$ip" ] || die "no address for the kind node ${KIND_NODE}"
  ip route replace "$SERVICE_CIDR" via "$ip"
  ip route replace "$KIND_POD_SUBNET" via "$ip"
  log "routes on this host: ${SERVICE_CIDR} and ${KIND_POD_SUBNET} via the kind node ${ip}"
}
kind_unroute() {
  ip route del "$SERVICE_CIDR" 2>/dev/null || true
  ip route del "$KIND_POD_SUBNET" 2>/dev/null || true
}

kind_exists() { "$1" get clusters 2>/dev/null | grep -qx "$KIND_CLUSTER"; }
kind_node_image() { docker inspect -f '{{.Config.Image}}' "$KIND_NODE" 2>/dev/null; }
kind_node_running() { [ "$(docker inspect -f '{{.State.Running}}' "$KIND_NODE" 2>/dev/null)" = true ]; }

# Approve the kubelet serving certificate requests of the cluster's nodes (and only those:
# signer kubernetes.io/kubelet-serving, requested by a system:node: user) until the kubelet
# holds its serving certificate. The evidence is the kubelet's own file, not an issued request:
# the controller-manager deletes issued requests after an hour (csrcleaner), so a cluster older
# than that has none left while its kubelet serves with a valid certificate. Requests pending
# from a rotation are approved on every start.
kind_approve_serving_certs() {
  local csrs
  for _ in $(seq 1 60); do
    csrs="$(kkc get csr -o 'jsonpath={range .items[?(@.spec.signerName=="kubernetes.io/kubelet-serving")]}{.metadata.name} {.spec.username} {.status.certificate}{"\n"}{end}')"
    awk '$2 ~ /^system:node:/ && $3 == "" {print $1}' <<<"$csrs" | while read -r n; do
      kkc certificate approve "$n" >/dev/null
    done
    if docker exec "$KIND_NODE" test -s /var/lib/kubelet/pki/kubelet-server-current.pem; then return 0; fi
    sleep 1
  done
  die "the kubelet of ${KIND_NODE} holds no serving certificate after 60 s (kubectl get csr)"
}

# The node's container started in a second, as UTC RFC 3339 (the precision of a node heartbeat)
kind_node_started() {
  local t; t="$(docker inspect -f '{{.State.StartedAt}}' "$KIND_NODE" 2>/dev/null)" || return 1
  echo "${t%%.*}Z"
}

# The API server ready, the node Ready since its container's start and kube-system's pods Ready
# (CoreDNS, kube-proxy: the tiers' pods need them). A node whose container restarted (its Docker
# engine did) shows the Ready status stored before the restart while its API server still fails
# /readyz: CI failed on that, start passing and the next kubectl finding the cluster not ready.
kind_wait_ready() {
  local since; since="$(kind_node_started)" || die "the kind node ${KIND_NODE} has no start time (docker inspect)"
  wait_for "API server ready (/readyz)" 120 kkc get --raw /readyz
  wait_for "node ${KIND_NODE} Ready since its start (${since})" 120 node_ready "$KIND_NODE" "$since" kkc
  wait_for "kube-system pods Ready" 180 kkc -n kube-system wait --for=condition=Ready pods --all --timeout 1s
}

# kind_stale IMAGE — why the existing cluster cannot be kept (exit 1 when it can)
kind_stale() {
  if [ "$(kind_node_image)" != "$1" ]; then echo "node image changed ($(kind_node_image) -> $1)"
  elif ! kind_config | cmp -s - "${KIND_DIR}/cluster.yaml"; then echo "the kind configuration changed (scripts/cluster/kind.sh)"
  # a node whose engine restarted comes back with another address and stale certificates
  elif ! kind_node_running; then echo "the kind node is not running"
  else return 1; fi
}

kind_start() {
  local kind img t0
  kind="$(kind_cli)"
  img="$("${SCRIPTS}/kind/node-image.sh" build)"
  if alive kube-apiserver || alive kubelet; then
    log "stopping the parts cluster (one cluster at a time)"; cmd_stop_parts
  fi
  local stale
  if kind_exists "$kind" && stale="$(kind_stale "$img")"; then
    log "${stale}: recreating the kind cluster"; kind_stop
  fi
  mkdir -p "$KIND_DIR" "$(dirname "$KUBECONFIG_OUT")"
  if ! kind_exists "$kind"; then
    kind_config > "${KIND_DIR}/cluster.yaml"
    t0=$(date +%s)
    log "kind create cluster --name ${KIND_CLUSTER} --image ${img}"
    "$kind" create cluster --name "$KIND_CLUSTER" --image "$img" --config "${KIND_DIR}/cluster.yaml" \
      --kubeconfig "$KIND_KUBECONFIG" --wait 180s >&2 || die "kind create cluster failed (kind export logs --name ${KIND_CLUSTER})"
    log "kind cluster created in $(( $(date +%s) - t0 ))s"
  fi
  "$kind" get kubeconfig --name "$KIND_CLUSTER" | sed "s/kind-${KIND_CLUSTER}/${CONTEXT}/g" > "${KUBECONFIG_OUT}.tmp"
  mv "${KUBECONFIG_OUT}.tmp" "$KUBECONFIG_OUT"
  echo kind > "${CACHE}/cluster-flavour"
  kind_routes
  kind_approve_serving_certs
  kind_wait_ready
  log "kind cluster ${KIND_CLUSTER} up: $(cmd_env)"
}

kind_stop() {
  local kind; kind="$(kind_cli)"
  kind_unroute
  "$kind" delete cluster --name "$KIND_CLUSTER" --kubeconfig "$KIND_KUBECONFIG"
  rm -f "${CACHE}/cluster-flavour"
}

# kind_import IMAGE|FILE.tar — into the node's containerd, as `kind load` does for users
kind_import() {
  local kind; kind="$(kind_cli)"
  if [ -f "$1" ]; then "$kind" load image-archive "$1" --name "$KIND_CLUSTER"
  else "$kind" load docker-image "$1" --name "$KIND_CLUSTER"; fi
}

# REF DIGEST of each image in the node's containerd (namespace k8s.io)
kind_images() { docker exec "$KIND_NODE" ctr -n k8s.io images ls 2>/dev/null | awk 'NR > 1 { print $1, $3 }'; }
