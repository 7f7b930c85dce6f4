#!/usr/bin/env bash
# scripts/cluster.sh — a real single-node Kubernetes cluster built offline from
# upstream components (see scripts/CLUSTER.md).
#
#   scripts/cluster.sh start|stop|status|env|build|import-image IMAGE|FILE.tar|images|knative-crds|selftest|delete|logs [COMPONENT]
#
# Builds are cached outside the clone under ${TIZI_CACHE:-$HOME/.cache/tizi}/k8s/<version>/,
# Go caches under ${TIZI_CACHE}/go/, runtime state under /var/lib/tizi-cluster and /run/tizi-cluster.
#
# This file holds the settings and the subcommands; the work is in scripts/cluster/:
# build.sh (binaries, pause image), certs.sh (CA, certificates, kubeconfigs), run.sh (configs,
# processes, start/stop/status, image import, kind), knative.sh (CRDs), selftest.sh.
set -euo pipefail

K8S_VERSION="${TIZI_K8S_VERSION:-v1.34.4}"
KNATIVE_VERSION="${TIZI_KNATIVE_VERSION:-v0.51.0}"
CONTEXT="${TIZI_KUBE_CONTEXT:-kind-tizi}"
NODE_NAME="${TIZI_NODE_NAME:-tizi-node}"
NODE_REGION="${TIZI_NODE_REGION:-ma-benguerir}"
STATE="${TIZI_CLUSTER_STATE:-/var/lib/tizi-cluster}"
RUN="${TIZI_CLUSTER_RUN:-/run/tizi-cluster}"
PAUSE_IMAGE="registry.k8s.io/pause:3.10"
SERVICE_CIDR="10.96.0.0/16"
POD_CIDR="10.244.0.0/24"
API_PORT=6443
CLUSTER_DNS="10.96.0.10"               # nothing listens there (no CoreDNS); harmless
CNI_BIN_DIR="/usr/lib/cni"             # Debian's containernetworking-plugins

LOG_TAG=cluster LOG_ELAPSED=1
# shellcheck source=lib/common.sh
. "$(dirname "${BASH_SOURCE[0]}")/lib/common.sh"   # SCRIPTS, CACHE, log, die, go_cache_env, …

KUBECONFIG_OUT="${CACHE}/kubeconfig"
KDIR="${CACHE}/k8s/${K8S_VERSION}"
BIN="${KDIR}/bin"
LOGS="${STATE}/logs"
PKI="${STATE}/pki"
CTRD_SOCK="${RUN}/containerd.sock"
TEMPLATES="${SCRIPTS}/cluster"         # data files (configs, selftest manifests) and the parts below

go_cache_env
export GOTOOLCHAIN=local
export GOFLAGS="-buildvcs=false"

# shellcheck source=cluster/build.sh
. "${TEMPLATES}/build.sh"      # build_* cmd_build pack_image
# shellcheck source=cluster/certs.sh
. "${TEMPLATES}/certs.sh"      # node_ip make_pki kubeconfig
# shellcheck source=cluster/run.sh
. "${TEMPLATES}/run.sh"        # cmd_start cmd_stop cmd_status cmd_env cmd_import_image cmd_delete
# shellcheck source=cluster/kind.sh
. "${TEMPLATES}/kind.sh"       # kind_start kind_stop kind_import kind_images (TIZI_CLUSTER=kind)
# shellcheck source=cluster/knative.sh
. "${TEMPLATES}/knative.sh"    # cmd_knative_crds
# shellcheck source=cluster/selftest.sh
. "${TEMPLATES}/selftest.sh"   # cmd_selftest

main() {
  case "${1:-}" in
    start) cmd_start ;;
    stop) cmd_stop ;;
    status) cmd_status ;;
    env) cmd_env ;;
    build) cmd_build ;;
    import-image) shift; cmd_import_image "$@" ;;
    images) cmd_images ;;
    knative-crds) cmd_knative_crds ;;
    delete) cmd_delete ;;
    selftest) cmd_selftest ;;
    logs) tail -n "${3:-100}" "${LOGS}/${2:-kubelet}.log" ;;
    *) echo "usage: $0 start|stop|status|env|build|import-image IMAGE|FILE.tar|images|knative-crds|selftest|delete|logs [COMPONENT]" >&2; exit 2 ;;
  esac
}

# One line, so that bash has read it whole before running (as in toolchain.sh).
main "$@"; exit $?
