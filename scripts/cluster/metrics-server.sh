#!/usr/bin/env bash
# scripts/cluster/metrics-server.sh — metrics-server v0.8.0 on the running scripts/cluster.sh cluster,
# from the binary and manifests scripts/cluster/serverless-build.sh cached, so an HPA can scale on CPU.
#
#   scripts/cluster/metrics-server.sh [install|uninstall]      # default: install
#
# Standalone (run, not sourced). Needs the API server started with the aggregation layer's flags
# (scripts/cluster/run.sh: --requestheader-*, --proxy-client-*, the front-proxy CA of certs.sh);
# a cluster started before those flags existed must be restarted (cluster.sh stop; cluster.sh start).
# The image dev.local/metrics-server:v0.8.0 (FROM local/debian:bookworm, the binary, uid 65534) is
# tagged by content hash and built once. The manifests are upstream's manifests/base through a
# kustomize overlay: the image, and the kubelet's serving certificate checked against the cluster CA
# (--kubelet-certificate-authority from a ConfigMap) instead of --kubelet-insecure-tls.
set -euo pipefail

LOG_TAG=metrics-server LOG_ELAPSED=1
# shellcheck source=../lib/common.sh
. "$(dirname "${BASH_SOURCE[0]}")/../lib/common.sh"   # SCRIPTS, CACHE, log, die, poll, short_hash

MS_VERSION="${TIZI_METRICS_SERVER_VERSION:-v0.8.0}"
MS_DIR="${CACHE}/metrics-server/${MS_VERSION}"
WORK="${MS_DIR}/deploy"
IMAGE_REPO="dev.local/metrics-server"

eval "$("${SCRIPTS}/cluster.sh" env)"
k() { kubectl --context "$TIZI_KUBE_CONTEXT" "$@"; }

if [ ! -x "${MS_DIR}/bin/metrics-server" ] || [ ! -f "${MS_DIR}/config/deployment.yaml" ]; then
  die "no cached metrics-server ${MS_VERSION}: run scripts/cluster/serverless-build.sh metrics-server"
fi

build_image() {
  local ctx="${WORK}/image" hash
  mkdir -p "$ctx"
  cp "${MS_DIR}/bin/metrics-server" "$ctx/metrics-server"
  printf 'FROM local/debian:bookworm\nCOPY metrics-server /metrics-server\nUSER 65534:65534\nENTRYPOINT ["/metrics-server"]\n' \
    > "$ctx/Dockerfile"
  hash="$({ docker image inspect --format '{{.Id}}' local/debian:bookworm; cd "$ctx" && find . -type f -print0 | hash_files; } | short_hash)"
  IMAGE="${IMAGE_REPO}:${hash}"
  if ! docker image inspect "$IMAGE" >/dev/null 2>&1; then
    log "building $IMAGE"
    DOCKER_BUILDKIT=1 /usr/bin/docker build -q -t "$IMAGE" -t "${IMAGE_REPO}:${MS_VERSION}" "$ctx" >/dev/null
    "${SCRIPTS}/cluster.sh" import-image "$IMAGE" >&2
  elif ! "${SCRIPTS}/cluster.sh" import-image "$IMAGE" >/dev/null 2>&1; then
    die "could not import $IMAGE into the cluster"
  fi
}

render() {
  local overlay="${WORK}/overlay"
  mkdir -p "$overlay"
  rm -rf "${overlay}/base" && cp -r "${MS_DIR}/config" "${overlay}/base"
  cat > "${overlay}/kustomization.yaml" <<EOT
apiVersion: kustomize.config.k8s.io/v1beta1
kind: Kustomization
resources:
  - base
images:
  - name: gcr.io/k8s-staging-metrics-server/metrics-server
    newName: ${IMAGE%%:*}
    newTag: ${IMAGE##*:}
patches:
  - target: {kind: Deployment, name: metrics-server}
    patch: |-
      - op: add
        path: /spec/template/spec/containers/0/args/-
        value: --kubelet-certificate-authority=/etc/tizi-ca/ca.crt
      - op: add
        path: /spec/template/spec/containers/0/volumeMounts/-
        value: {name: cluster-ca, mountPath: /etc/tizi-ca, readOnly: true}
      - op: add
        path: /spec/template/spec/volumes/-
        value: {name: cluster-ca, configMap: {name: metrics-server-cluster-ca}}
      - op: replace
        path: /spec/template/spec/containers/0/resources/requests
        value: {cpu: 25m, memory: 64Mi}
EOT
  k kustomize "$overlay" > "${WORK}/metrics-server.yaml"
}

cmd_install() {
  local t0=$EPOCHREALTIME ca
  ca="$(k -n kube-system get configmap extension-apiserver-authentication \
    -o jsonpath='{.data.requestheader-client-ca-file}' 2>/dev/null || true)"
  [ -n "$ca" ] || die "the API server runs without the aggregation layer's flags: restart the cluster (scripts/cluster.sh stop; scripts/cluster.sh start)"
  mkdir -p "$WORK"
  build_image
  render
  # the cluster CA as Kubernetes publishes it in every namespace (kube-root-ca.crt): the same
  # on the parts cluster and on kind, whose kubelets' serving certificates it signed
  k -n kube-system get configmap kube-root-ca.crt -o jsonpath='{.data.ca\.crt}' > "${WORK}/ca.crt"
  [ -s "${WORK}/ca.crt" ] || die "no kube-root-ca.crt ConfigMap in kube-system (is the controller manager running?)"
  k -n kube-system create configmap metrics-server-cluster-ca --from-file=ca.crt="${WORK}/ca.crt" \
    --dry-run=client -o yaml | k apply -f - >/dev/null
  k apply --server-side --force-conflicts -f "${WORK}/metrics-server.yaml" >/dev/null
  k -n kube-system rollout status deploy/metrics-server --timeout=180s >&2
  poll 300 0.5 bash -c "kubectl --context '$TIZI_KUBE_CONTEXT' get --raw /apis/metrics.k8s.io/v1beta1/nodes >/dev/null 2>&1" \
    || die "metrics.k8s.io does not answer: $(k get apiservice v1beta1.metrics.k8s.io -o jsonpath='{.status.conditions[0].message}')"
  log "metrics-server ${MS_VERSION} serving metrics.k8s.io ($(awk -v a="$t0" -v b="$EPOCHREALTIME" 'BEGIN { printf "%.1f", b - a }') s)"
}

cmd_uninstall() {
  [ -f "${WORK}/metrics-server.yaml" ] && k delete -f "${WORK}/metrics-server.yaml" --ignore-not-found >/dev/null
  k -n kube-system delete configmap metrics-server-cluster-ca --ignore-not-found >/dev/null
}

case "${1:-install}" in
  install) cmd_install ;;
  uninstall) cmd_uninstall ;;
  *) echo "usage: $0 [install|uninstall]" >&2; exit 2 ;;
esac
