#!/usr/bin/env bash
# scripts/kind/node-image.sh — a kind node image assembled offline, for `kind create cluster`.
#
#   scripts/kind/node-image.sh build   build (or skip) the image; print its name
#   scripts/kind/node-image.sh name    print the image's name (tizi/kind-node:<k8s>-<hash>)
#   scripts/kind/node-image.sh kind    build (or skip) the kind CLI; print its path
#
# `kind build node-image` cannot run here: it pulls etcd, CoreDNS, pause, kindnetd and
# local-path images from registries. This script builds the same result from parts
# (recipe and figures: scripts/kind/README.md):
#   1. binaries: kubeadm, kubelet, kubectl, crictl, the control plane and kube-proxy from
#      scripts/cluster.sh build; etcd 3.6, CoreDNS and local-path-provisioner from Go modules
#      (parts.sh); pause (C)
#   2. component images under the names `kubeadm config images list` prints, each a layer of
#      binaries over local/debian:bookworm (images/Dockerfile.*)
#   3. the node root file system: Debian + systemd + containerd + runc + CNI plugins + tizi's
#      node files (node/rootfs: entrypoint, units, containerd configuration, bridge CNI writer)
#   4. the component images imported into the node's containerd (namespace k8s.io, not
#      unpacked: the CRI unpacks on first use), as kind's own build does, then `docker commit`
# The result is cached by content: a label holds the hash of every input.
set -euo pipefail

LOG_TAG=kind-node LOG_ELAPSED=1
# shellcheck source=../lib/common.sh
. "$(dirname "${BASH_SOURCE[0]}")/../lib/common.sh"

K8S_VERSION="${TIZI_K8S_VERSION:-v1.34.4}"
ETCD_VERSION="3.6.5"                    # kubeadm 1.34: registry.k8s.io/etcd:3.6.5-0
COREDNS_VERSION="v1.12.1"               # kubeadm 1.34: registry.k8s.io/coredns/coredns:v1.12.1
LOCAL_PATH_VERSION="v0.0.30"            # node/rootfs/kind/manifests/default-storage.yaml
PAUSE_IMAGE="registry.k8s.io/pause:3.10"   # containerd's sandbox_image (node/rootfs/etc/containerd)
KIND_CACHE="${CACHE}/kind"
KBIN="${CACHE}/k8s/${K8S_VERSION}/bin"
HERE="${SCRIPTS}/kind"
IMAGE_REPO="tizi/kind-node"
DOCKER="${DOCKER:-docker}"

go_cache_env
export GOTOOLCHAIN=local GOFLAGS="-buildvcs=false"
# shellcheck source=parts.sh
. "${HERE}/parts.sh"

# Every input of the image: node files, Dockerfiles, these scripts, the binaries, the base image
# (not README.md: documentation changes do not rebuild the image and recreate the cluster).
input_hash() {
  {
    (cd "$HERE" && find node images node-image.sh parts.sh -type f -print0 | hash_files)
    for b in kubeadm kubelet kubectl crictl kube-apiserver kube-controller-manager kube-scheduler kube-proxy; do
      sha256sum "${KBIN}/${b}"
    done
    sha256sum "${KIND_CACHE}/bin/etcd-${ETCD_VERSION}" "${KIND_CACHE}/bin/coredns-${COREDNS_VERSION}" \
      "${KIND_CACHE}/bin/local-path-provisioner-${LOCAL_PATH_VERSION}" \
      "${CACHE}/k8s/${K8S_VERSION}/pause.tar"
    "$DOCKER" image inspect -f '{{.Id}}' local/debian:bookworm
  } | short_hash
}

image_name() { echo "${IMAGE_REPO}:${K8S_VERSION}-$(input_hash)"; }

build_parts() {
  "${SCRIPTS}/build-image.sh" --base >&2                 # local/debian:bookworm
  "${SCRIPTS}/cluster.sh" build >&2                      # kubeadm, kubelet, …, pause.tar
  build_etcd36
  build_coredns
  build_local_path
}

# The component images, saved together so that their shared base layer is stored once.
build_component_images() {
  local ctx="$1" out="$2" reg="registry.k8s.io" c
  mkdir -p "${ctx}/bin"
  for c in kube-apiserver kube-controller-manager kube-scheduler kube-proxy; do cp "${KBIN}/${c}" "${ctx}/bin/"; done
  cp "${KIND_CACHE}/bin/etcd-${ETCD_VERSION}" "${ctx}/bin/etcd"
  cp "${KIND_CACHE}/bin/coredns-${COREDNS_VERSION}" "${ctx}/bin/coredns"
  cp "${KIND_CACHE}/bin/local-path-provisioner-${LOCAL_PATH_VERSION}" "${ctx}/bin/local-path-provisioner"
  cp "${HERE}/images/"* "$ctx/"
  local tags=()
  for c in kube-apiserver kube-controller-manager kube-scheduler; do
    "$DOCKER" build -q -f "${ctx}/Dockerfile.binary" --build-arg "BINARY=${c}" -t "${reg}/${c}:${K8S_VERSION}" "$ctx" >/dev/null
    tags+=("${reg}/${c}:${K8S_VERSION}")
  done
  "$DOCKER" build -q -f "${ctx}/Dockerfile.binary" --build-arg BINARY=etcd -t "${reg}/etcd:${ETCD_VERSION}-0" "$ctx" >/dev/null
  "$DOCKER" build -q -f "${ctx}/Dockerfile.coredns" -t "${reg}/coredns/coredns:${COREDNS_VERSION}" "$ctx" >/dev/null
  "$DOCKER" build -q -f "${ctx}/Dockerfile.kube-proxy" -t "${reg}/kube-proxy:${K8S_VERSION}" "$ctx" >/dev/null
  "$DOCKER" build -q -f "${ctx}/Dockerfile.local-path" -t "dev.local/local-path-provisioner:${LOCAL_PATH_VERSION}" \
    -t "dev.local/local-path-helper:${LOCAL_PATH_VERSION}" "$ctx" >/dev/null
  tags+=("${reg}/etcd:${ETCD_VERSION}-0" "${reg}/coredns/coredns:${COREDNS_VERSION}" "${reg}/kube-proxy:${K8S_VERSION}"
    "dev.local/local-path-provisioner:${LOCAL_PATH_VERSION}" "dev.local/local-path-helper:${LOCAL_PATH_VERSION}")
  log "component images: ${tags[*]}"
  "$DOCKER" save -o "$out" "${tags[@]}"
}

# The node's root file system (node/Dockerfile), without images yet.
build_rootfs() {
  local ctx="$1" tag="$2"
  cp -a "${HERE}/node/." "$ctx/"
  mkdir -p "${ctx}/bin"
  for b in kubeadm kubelet kubectl crictl; do cp "${KBIN}/${b}" "${ctx}/bin/"; done
  "$DOCKER" build -q --build-arg "K8S_VERSION=${K8S_VERSION}" -t "$tag" "$ctx" >/dev/null
}

# Import the images into the node's containerd as kind's build does (containerd started by
# hand in a build container, `ctr images import --no-unpack`), then commit.
import_and_commit() {
  local rootfs_tag="$1" name="$2" hash="$3" images_tar="$4" pause_tar="$5" cid
  cid="$("$DOCKER" run -d --entrypoint sleep --security-opt seccomp=unconfined "$rootfs_tag" infinity)"
  # shellcheck disable=SC2064  # expand now: the container id is known
  trap "'$DOCKER' rm -f -v '$cid' >/dev/null 2>&1 || true" RETURN
  "$DOCKER" cp "$images_tar" "${cid}:/tmp/images.tar"
  "$DOCKER" cp "$pause_tar" "${cid}:/tmp/pause.tar"
  "$DOCKER" exec "$cid" bash -euc '
    nohup containerd >/tmp/containerd.log 2>&1 &
    for i in $(seq 1 50); do ctr version >/dev/null 2>&1 && break; sleep 0.2; done
    ctr version >/dev/null || { cat /tmp/containerd.log; exit 1; }
    for t in /tmp/images.tar /tmp/pause.tar; do
      ctr --namespace=k8s.io images import --label=io.cri-containerd.pinned=pinned \
        --all-platforms --no-unpack --digests "$t" >/dev/null
    done
    ctr --namespace=k8s.io images list -q | grep -v "^sha256:"
    pkill containerd; while pgrep -x containerd >/dev/null; do sleep 0.1; done
    rm -f /tmp/images.tar /tmp/pause.tar /tmp/containerd.log'
  "$DOCKER" commit \
    --change 'ENTRYPOINT ["/usr/local/bin/entrypoint", "/sbin/init"]' \
    --change "LABEL tizi.kind-node.hash=${hash}" \
    "$cid" "$name" >/dev/null
}

# Earlier node images (1.3 GB each) go once a new one is built; one a container still uses stays.
remove_older_images() {
  local keep="$1" ref
  "$DOCKER" images --format '{{.Repository}}:{{.Tag}}' "$IMAGE_REPO" | grep -- "-[0-9a-f]\{16\}$" |
    while read -r ref; do
      [ "$ref" = "$keep" ] || "$DOCKER" rmi "$ref" >/dev/null 2>&1 || true
    done
}

cmd_build() {
  build_parts
  local name hash; name="$(image_name)"; hash="${name##*-}"
  if "$DOCKER" image inspect "$name" >/dev/null 2>&1; then
    log "node image ${name} is up to date"; echo "$name"; return 0
  fi
  local s w; s=$(date +%s); w="$(mktemp -d)"
  log "building node image ${name}"
  mkdir -p "${w}/images" "${w}/node"
  build_component_images "${w}/images" "${w}/images.tar"
  build_rootfs "${w}/node" "${IMAGE_REPO}-rootfs:${hash}"
  log "importing the component images into the node's containerd"
  import_and_commit "${IMAGE_REPO}-rootfs:${hash}" "$name" "$hash" "${w}/images.tar" "${CACHE}/k8s/${K8S_VERSION}/pause.tar" >&2
  "$DOCKER" tag "$name" "${IMAGE_REPO}:${K8S_VERSION}"
  "$DOCKER" rmi "${IMAGE_REPO}-rootfs:${hash}" >/dev/null || true
  remove_older_images "$name"
  rm -rf "$w"
  log "built ${name} ($("$DOCKER" image inspect -f '{{.Size}}' "$name" | awk '{printf "%d MB", $1/1e6}')) in $(( $(date +%s) - s ))s"
  echo "$name"
}

main() {
  case "${1:-}" in
    build) cmd_build ;;
    name) image_name ;;
    kind) build_kind_cli; echo "${KIND_CACHE}/bin/kind" ;;
    parts) build_parts ;;
    *) echo "usage: $0 build|name|kind|parts" >&2; exit 2 ;;
  esac
}

main "$@"; exit $?
