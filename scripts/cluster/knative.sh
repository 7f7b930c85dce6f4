# shellcheck shell=bash
# scripts/cluster/knative.sh — sourced by scripts/cluster.sh: `knative-crds` applies the Knative
# Serving CRDs of knative.dev/serving@${KNATIVE_VERSION} (module zip from the Go module proxy,
# copied once into ${TIZI_CACHE}/knative/<version>/): validation only, no Knative controllers.

cmd_knative_crds() {
  local d="${CACHE}/knative/${KNATIVE_VERSION}"
  if [ ! -f "${d}/.ready" ]; then
    log "downloading knative.dev/serving@${KNATIVE_VERSION} (Go module proxy)"
    local dir
    dir="$(cd /tmp && go_mod_field "knative.dev/serving@${KNATIVE_VERSION}" Dir)"
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
