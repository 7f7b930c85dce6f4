#!/usr/bin/env bash
# scripts/cluster/knative-serving.sh — real Knative Serving (v0.42.2) with Traefik (v3.6.12) as its
# ingress on the running scripts/cluster.sh cluster, from the binaries and manifests that
# scripts/cluster/serverless-build.sh cached (see scripts/CLUSTER.md, "Knative Serving, running").
#
#   scripts/cluster/knative-serving.sh [all|images|install|selftest|uninstall]   # default: all = install + selftest
#
# Standalone like serverless-build.sh: it is run, not sourced by cluster.sh. It only adds to the cluster
# (namespaces knative-serving and ${TIZI_TRAEFIK_NAMESPACE:-traefik-system}, cluster-scoped RBAC and
# webhooks, the Knative CRDs of v0.42.2 in place of those `cluster.sh knative-crds` applied).
#   images     build dev.local/knative/{controller,activator,autoscaler,webhook,queue}:v0.42.2 and
#              dev.local/traefik:v3.6.12 (FROM local/debian:bookworm, user 65532, content-hash tag and
#              label: skipped when unchanged) and import the ones containerd lacks
#   install    images, then CRDs, Knative Serving core (ko:// replaced, configs set), Traefik; waits until
#              every Deployment is Available and the webhook answers. Skipped (one hash compare) when the
#              same rendered manifests are installed and Available.
#   selftest   a Knative Service answers 200 through Traefik, scales to zero, comes back (cold start timed)
#   uninstall  remove all of it except the CRDs (other tests' Knative objects live in them)
# Environment: TIZI_KSERVING_VERSION (v0.42.2), TIZI_TRAEFIK_VERSION (v3.6.12), TIZI_KNATIVE_DOMAIN
# (knative.tizi.test), TIZI_KNATIVE_STABLE_WINDOW (6s, the minimum), TIZI_KNATIVE_GRACE (10s),
# TIZI_TRAEFIK_NAMESPACE (traefik-system), TIZI_SELFTEST_KEEP=1 (keep the selftest namespace).
set -euo pipefail

LOG_TAG=knative-serving LOG_ELAPSED=1
# shellcheck source=../lib/common.sh
. "$(dirname "${BASH_SOURCE[0]}")/../lib/common.sh"   # SCRIPTS, CACHE, log, die, poll, short_hash

KS_VERSION="${TIZI_KSERVING_VERSION:-v0.42.2}"
TRAEFIK_VERSION="${TIZI_TRAEFIK_VERSION:-v3.6.12}"
KS_DOMAIN="${TIZI_KNATIVE_DOMAIN:-knative.tizi.test}"
KS_STABLE_WINDOW="${TIZI_KNATIVE_STABLE_WINDOW:-6s}"
KS_GRACE="${TIZI_KNATIVE_GRACE:-10s}"
TRAEFIK_NS="${TIZI_TRAEFIK_NAMESPACE:-traefik-system}"
KS_NS=knative-serving
KS_COMPONENTS=(controller activator autoscaler webhook queue)
KS_CPU_REQUEST=25m      # upstream asks 100m-300m each: 600m of this 2-core node's 2000m
KS_CLUSTER_DOMAIN=cluster.local   # kubelet.yaml's clusterDomain
SELFTEST_NS=tizi-knative-selftest

KSDIR="${CACHE}/knative/${KS_VERSION}"
KS_BIN="${KSDIR}/bin"
KS_CONFIG="${KSDIR}/config/core"
TRAEFIK_BIN="${CACHE}/traefik/${TRAEFIK_VERSION}/bin/traefik"
TRAEFIK_RBAC="${CACHE}/traefik/${TRAEFIK_VERSION}/config/kubernetes-knative-rbac.yml"
WORK="${KSDIR}/deploy"            # image build contexts, rendered manifests (never committed)
BASE_IMAGE="local/debian:bookworm"

eval "$("${SCRIPTS}/cluster.sh" env)"   # KUBECONFIG, TIZI_KUBE_CONTEXT, PATH with kubectl 1.34
k() { kubectl --context "$TIZI_KUBE_CONTEXT" "$@"; }
kapply() { k apply --server-side --force-conflicts "$@" >/dev/null; }
since() { awk -v a="$1" -v b="$EPOCHREALTIME" -v f="%.${2:-1}f" 'BEGIN { printf f, b - a }'; }  # since T0 [DECIMALS]

# --- images ----------------------------------------------------------------------------------------
# file_sha FILE — sha256 of FILE, remembered per size+mtime (hashing 400 MB of binaries takes 1.5 s)
file_sha() {
  local f="$1" memo key line
  memo="${WORK}/sha/$(echo "$f" | short_hash)"
  key="$(stat -c '%s %Y' "$f")"
  if line="$(cat "$memo" 2>/dev/null)" && [ "${line% *}" = "$key" ]; then echo "${line##* }"; return; fi
  mkdir -p "${WORK}/sha"
  line="$(sha256sum "$f" | cut -d' ' -f1)"
  echo "$key $line" > "$memo"
  echo "$line"
}

# build_image NAME:TAG BINARY — a two-line image over local/debian:bookworm with BINARY as its
# entrypoint, tagged NAME:<content hash> and NAME:TAG; skipped when that hash exists. Sets IMG_HASH.
IMG_BUILT=()
build_image() {
  local ref="$1" binary="$2" name="${1%:*}" exe base hash ctx
  exe="$(basename "$binary")"
  base="$(docker image inspect --format '{{.Id}}' "$BASE_IMAGE")"
  ctx="${WORK}/images/${exe}"
  mkdir -p "$ctx"
  cat > "${ctx}/Dockerfile.new" <<EOF
FROM ${BASE_IMAGE}
COPY --chown=0:0 ${exe} /ko-app/${exe}
USER 65532:65532
ENTRYPOINT ["/ko-app/${exe}"]
EOF
  mv "${ctx}/Dockerfile.new" "${ctx}/Dockerfile"
  hash="$(printf '%s\n%s\n%s\n' "$base" "$(cat "${ctx}/Dockerfile")" "$(file_sha "$binary")" | short_hash)"
  IMG_HASH="$hash"
  if [ "$(docker image inspect --format '{{index .Config.Labels "org.tizi.content-hash"}}' "${name}:${hash}" 2>/dev/null || true)" = "$hash" ]; then
    docker tag "${name}:${hash}" "$ref"
    return 0
  fi
  local t0=$EPOCHREALTIME
  ln -f "$binary" "${ctx}/${exe}" 2>/dev/null || cp "$binary" "${ctx}/${exe}"
  DOCKER_BUILDKIT=1 /usr/bin/docker build -q --label "org.tizi.content-hash=${hash}" \
    -t "${name}:${hash}" -t "$ref" "$ctx" >/dev/null
  rm -f "${ctx}/${exe}"
  IMG_BUILT+=("$ref")
  log "built ${ref} (${name}:${hash}) in $(since "$t0")s, $(docker image inspect --format '{{.Size}}' "$ref" | awk '{printf "%d MB", $1/1e6}')"
}

ctr_images() { "${SCRIPTS}/cluster.sh" images; }  # REF DIGEST, from the node's containerd (parts or kind)

# import_images — one docker save of the IMAGE_REFS (content-hash tags) that containerd lacks, or whose
# version tag (IMPORT_ALIASES, same index) points elsewhere: the shared base layer goes once
import_images() {
  local have refs=() i dh da t0=$EPOCHREALTIME tar="${WORK}/import.tar"
  have="$(ctr_images)" || have=""
  for i in "${!IMAGE_REFS[@]}"; do
    dh="$(awk -v r="${IMAGE_REFS[$i]}" '$1 == r { print $2 }' <<<"$have")"
    da="$(awk -v r="${IMPORT_ALIASES[$i]}" '$1 == r { print $2 }' <<<"$have")"
    if [ -z "$dh" ] || [ "$dh" != "$da" ]; then refs+=("${IMAGE_REFS[$i]}" "${IMPORT_ALIASES[$i]}"); fi
  done
  [ ${#refs[@]} -eq 0 ] && return 0
  docker save -o "$tar" "${refs[@]}"
  "${SCRIPTS}/cluster.sh" import-image "$tar" >/dev/null 2>&1 || { rm -f "$tar"; die "import of ${refs[*]} failed"; }
  log "imported $((${#refs[@]} / 2)) image(s) into the node in $(since "$t0")s ($(du -m "$tar" | cut -f1) MB archive)"
  rm -f "$tar"
}

IMAGE_REFS=() IMPORT_ALIASES=() IMAGE_HASHES=""
cmd_images() {
  local c t0=$EPOCHREALTIME
  if [ ! -f "${KS_BIN}/.complete" ] || [ ! -x "$TRAEFIK_BIN" ]; then
    die "binaries missing: run scripts/cluster/serverless-build.sh knative traefik"
  fi
  docker version >/dev/null 2>&1 || die "the Docker engine does not answer (it builds the images)"
  docker image inspect "$BASE_IMAGE" >/dev/null 2>&1 || "${SCRIPTS}/build-image.sh" --base
  for c in "${KS_COMPONENTS[@]}"; do
    build_image "dev.local/knative/${c}:${KS_VERSION}" "${KS_BIN}/${c}"
    IMAGE_REFS+=("dev.local/knative/${c}:${IMG_HASH}"); IMPORT_ALIASES+=("dev.local/knative/${c}:${KS_VERSION}")
    IMAGE_HASHES+="${c}=${IMG_HASH} "
  done
  build_image "dev.local/traefik:${TRAEFIK_VERSION}" "$TRAEFIK_BIN"
  IMAGE_REFS+=("dev.local/traefik:${IMG_HASH}"); IMPORT_ALIASES+=("dev.local/traefik:${TRAEFIK_VERSION}")
  IMAGE_HASHES+="traefik=${IMG_HASH}"
  import_images
  log "images ready in $(since "$t0")s: ${IMAGE_HASHES}"
}

# --- manifests -------------------------------------------------------------------------------------
# cm_data KEY=VALUE... — stdin -> stdout with "  KEY: "VALUE"" lines added right after `data:`
cm_data() {
  local add="" kv
  for kv in "$@"; do add+="  ${kv%%=*}: \"${kv#*=}\"\\n"; done
  awk -v add="$add" '{ print } /^data:[ \t]*$/ { printf "%s", add }'
}

catdocs() { local f; for f in "$@"; do cat "$f"; printf '\n---\n'; done; }

# render_core OUT — Knative Serving core without the activator (rendered later, it needs the
# autoscaler's ClusterIP); the webhook configurations separately (applied last)
render_core() {
  local out="$1" f
  mkdir -p "$out"; rm -f "$out"/*.yaml
  local ko="s#ko://knative.dev/serving/cmd/\\([a-z]*\\)#dev.local/knative/\\1:${KS_VERSION}#"
  cp "${KS_CONFIG}/100-namespace.yaml" "$out/10-namespace.yaml"
  catdocs "${KS_CONFIG}"/200-roles/*.yaml "${KS_CONFIG}/200-serviceaccount.yaml" > "$out/20-rbac.yaml"
  for f in "${KS_CONFIG}"/configmaps/*.yaml; do
    case "$(basename "$f")" in
      deployment.yaml) sed "$ko" "$f" | cm_data \
        "registries-skipping-tag-resolving=kind.local,ko.local,dev.local,tizi.local,index.docker.io" ;;
      network.yaml) cm_data "ingress-class=traefik.ingress.networking.knative.dev" < "$f" ;;
      domain.yaml) cm_data "${KS_DOMAIN}=" < "$f" ;;
      autoscaler.yaml) cm_data "enable-scale-to-zero=true" "scale-to-zero-grace-period=${KS_GRACE}" \
        "stable-window=${KS_STABLE_WINDOW}" "target-burst-capacity=-1" < "$f" ;;
      features.yaml) cm_data "kubernetes.podspec-affinity=enabled" "kubernetes.podspec-nodeselector=enabled" \
        "kubernetes.podspec-tolerations=enabled" "kubernetes.podspec-securitycontext=enabled" \
        "kubernetes.podspec-init-containers=enabled" < "$f" ;;
      *) cat "$f" ;;
    esac
    printf '\n---\n'
  done > "$out/30-configmaps.yaml"
  for f in "${KS_CONFIG}"/deployments/*.yaml; do
    # no metrics-server: the activator/webhook HPAs (and their PDBs) would only log an error every 15 s
    case "$(basename "$f")" in activator.yaml|*-hpa.yaml) continue ;; esac
    render_deployment "$f"; printf '\n---\n'
  done > "$out/40-deployments.yaml"
  catdocs "${KS_CONFIG}/999-cache.yaml" "${KS_CONFIG}/300-knativecertificate.yaml" | sed "$ko" > "$out/50-crs.yaml"
  # the (empty) webhook-certs Secret the webhook fills and needs to become Ready; the configurations go last
  cp "${KS_CONFIG}/webhooks/secret.yaml" "$out/35-webhook-secret.yaml"
  catdocs "${KS_CONFIG}"/webhooks/{configmap-validation,defaulting,resource-validation}.yaml > "$out/90-webhooks.yaml"
}

# render_deployment FILE [HOSTALIAS_IP] — ko:// -> dev.local, imagePullPolicy IfNotPresent, smaller CPU
# requests; with an IP, hostAliases for the autoscaler's Service name (there is no cluster DNS)
render_deployment() {
  local ip="${2:-}" ko="s#ko://knative.dev/serving/cmd/\\([a-z]*\\)#dev.local/knative/\\1:${KS_VERSION}#"
  sed "$ko" "$1" | awk -v cpu="$KS_CPU_REQUEST" -v ip="$ip" -v d="$KS_CLUSTER_DOMAIN" '
    /^ *image: dev\.local\// { print; sub(/image:.*/, "imagePullPolicy: IfNotPresent"); print; next }
    /^ *requests: *$/ { inreq = 1; print; next }
    inreq && /^ *cpu:/ { sub(/cpu:.*/, "cpu: " cpu); inreq = 0; print; next }
    /^ *limits: *$/ { inreq = 0 }
    ip != "" && /^      serviceAccountName:/ {
      printf "      hostAliases:\n      - ip: \"%s\"\n        hostnames: [autoscaler.knative-serving.svc.%s, autoscaler.knative-serving.svc, autoscaler.knative-serving]\n", ip, d
    }
    { print }'
}

render_traefik() {
  local out="$1" ver="${TRAEFIK_VERSION}"
  {
    cat <<EOF
apiVersion: v1
kind: Namespace
metadata:
  name: ${TRAEFIK_NS}
  labels:
    pod-security.kubernetes.io/enforce: restricted
---
apiVersion: v1
kind: ServiceAccount
metadata:
  name: traefik-controller
  namespace: ${TRAEFIK_NS}
---
EOF
    # upstream's RBAC binds default/traefik-controller under the generic name gateway-controller
    sed -e "s/namespace: default/namespace: ${TRAEFIK_NS}/" -e "s/name: gateway-controller/name: traefik-knative-controller/" "$TRAEFIK_RBAC"
    cat <<EOF
---
apiVersion: apps/v1
kind: Deployment
metadata:
  name: traefik
  namespace: ${TRAEFIK_NS}
  labels: {app: traefik}
spec:
  replicas: 1
  selector:
    matchLabels: {app: traefik}
  template:
    metadata:
      labels: {app: traefik}
    spec:
      serviceAccountName: traefik-controller
      securityContext:
        runAsNonRoot: true
        runAsUser: 65532
        runAsGroup: 65532
        seccompProfile: {type: RuntimeDefault}
      containers:
      - name: traefik
        image: dev.local/traefik:${ver}
        imagePullPolicy: IfNotPresent
        args:
        - --experimental.knative=true
        - --providers.knative=true
        - --providers.knative.publicEntrypoints=web
        - --providers.knative.publicService.name=traefik
        - --providers.knative.publicService.namespace=${TRAEFIK_NS}
        - --providers.knative.privateEntrypoints=web-internal
        - --providers.knative.privateService.name=traefik-internal
        - --providers.knative.privateService.namespace=${TRAEFIK_NS}
        - --entryPoints.web.address=:8080
        - --entryPoints.web-internal.address=:8081
        - --entryPoints.traefik.address=:9000
        - --ping=true
        - --global.checkNewVersion=false
        - --global.sendAnonymousUsage=false
        - --log.level=INFO
        - --log.noColor=true
        ports:
        - {name: web, containerPort: 8080}
        - {name: web-internal, containerPort: 8081}
        - {name: admin, containerPort: 9000}
        readinessProbe:
          httpGet: {path: /ping, port: admin}
          periodSeconds: 2
        livenessProbe:
          httpGet: {path: /ping, port: admin}
          periodSeconds: 10
        resources:
          requests: {cpu: ${KS_CPU_REQUEST}, memory: 64Mi}
          limits: {cpu: "1", memory: 512Mi}
        securityContext:
          allowPrivilegeEscalation: false
          readOnlyRootFilesystem: true
          capabilities: {drop: [ALL]}
---
apiVersion: v1
kind: Service
metadata:
  name: traefik
  namespace: ${TRAEFIK_NS}
spec:
  selector: {app: traefik}
  ports:
  - {name: http, port: 80, targetPort: web}
---
apiVersion: v1
kind: Service
metadata:
  name: traefik-internal
  namespace: ${TRAEFIK_NS}
spec:
  selector: {app: traefik}
  ports:
  - {name: http, port: 80, targetPort: web-internal}
EOF
  } > "$out/60-traefik.yaml"
}

install_hash() {  # the rendered manifests (activator included) and the images' content hashes
  { echo "$IMAGE_HASHES"; cat "${WORK}/manifests"/*.yaml; } | short_hash
}

deployments_available() {
  local ns want have
  for ns in "$KS_NS" "$TRAEFIK_NS"; do
    want="$(k -n "$ns" get deploy -o name 2>/dev/null | wc -l)"
    have="$(k -n "$ns" get deploy -o jsonpath='{range .items[*]}{.status.conditions[?(@.type=="Available")].status}{"\n"}{end}' 2>/dev/null | grep -c True)" || true
    [ "$want" -gt 0 ] && [ "$want" = "$have" ] || return 1
  done
}

# shellcheck disable=SC2317  # called through poll
# the Knative webhook answers once it has put its CA into the webhook configurations
webhook_answers() {
  k apply --dry-run=server -f - >/dev/null 2>&1 <<EOF
apiVersion: serving.knative.dev/v1
kind: Service
metadata: {name: webhook-probe, namespace: default}
spec:
  template:
    spec:
      containers: [{image: dev.local/knative/queue:${KS_VERSION}}]
EOF
}

cmd_install() {
  local t0=$EPOCHREALTIME m="${WORK}/manifests"
  poll 60 1 k get --raw /readyz || die "the API server is not ready after 60 s (scripts/cluster.sh start; kubectl get --raw '/readyz?verbose')"
  cmd_images
  render_core "$m"
  render_traefik "$m"
  local ip
  ip="$(k -n "$KS_NS" get svc autoscaler -o jsonpath='{.spec.clusterIP}' 2>/dev/null)" || ip=""
  if [ -n "$ip" ]; then
    render_deployment "${KS_CONFIG}/deployments/activator.yaml" "$ip" > "$m/45-activator.yaml"
    local h; h="$(install_hash)"
    if [ "$(k get ns "$KS_NS" -o jsonpath='{.metadata.annotations.tizi\.dev/install-hash}' 2>/dev/null)" = "$h" ] \
        && deployments_available; then
      # after a node restart, Available is the stored status: the pods say whether they serve
      local ns
      for ns in "$KS_NS" "$TRAEFIK_NS"; do
        k -n "$ns" wait --for=condition=Ready pods --all --timeout 180s >/dev/null \
          || die "the pods of ${ns} are not Ready after 180 s (kubectl -n ${ns} get pods)"
      done
      log "Knative Serving ${KS_VERSION} + Traefik ${TRAEFIK_VERSION} already installed (hash ${h}): nothing to do ($(since "$t0")s)"
      return 0
    fi
  fi
  log "CRDs of knative.dev/serving ${KS_VERSION} (+ networking, caching)"
  kapply -f "${KS_CONFIG}/300-resources" -f "${KS_CONFIG}/300-imagecache.yaml"
  k wait --for condition=Established --timeout 60s -f "${KS_CONFIG}/300-resources" -f "${KS_CONFIG}/300-imagecache.yaml" >/dev/null
  log "Traefik ${TRAEFIK_VERSION} (namespace ${TRAEFIK_NS})"
  kapply -f "$m/60-traefik.yaml"
  log "Knative Serving core"
  kapply -f "$m/10-namespace.yaml" -f "$m/20-rbac.yaml" -f "$m/30-configmaps.yaml" -f "$m/35-webhook-secret.yaml" \
    -f "$m/40-deployments.yaml" -f "$m/50-crs.yaml"
  ip="$(k -n "$KS_NS" get svc autoscaler -o jsonpath='{.spec.clusterIP}')"
  render_deployment "${KS_CONFIG}/deployments/activator.yaml" "$ip" > "$m/45-activator.yaml"
  kapply -f "$m/45-activator.yaml"
  local r
  for r in "${IMG_BUILT[@]}"; do   # a rebuilt image under an unchanged tag: restart its users
    case "$r" in
      dev.local/traefik:*) k -n "$TRAEFIK_NS" rollout restart deploy/traefik >/dev/null 2>&1 || true ;;
      dev.local/knative/queue:*) ;;
      dev.local/knative/*) r="${r#dev.local/knative/}"; k -n "$KS_NS" rollout restart "deploy/${r%%:*}" >/dev/null 2>&1 || true ;;
    esac
  done
  log "waiting for the Deployments to be Available"
  k -n "$TRAEFIK_NS" rollout status deploy/traefik --timeout 180s >/dev/null \
    || { k -n "$TRAEFIK_NS" get pods -o wide >&2; die "Traefik did not become Available"; }
  for r in controller webhook autoscaler activator; do
    k -n "$KS_NS" rollout status "deploy/${r}" --timeout 180s >/dev/null \
      || { k -n "$KS_NS" get pods -o wide >&2; k -n "$KS_NS" logs "deploy/${r}" --tail 20 >&2 || true; die "${r} did not become Available"; }
  done
  # the webhook configurations last, once the webhook runs (failurePolicy Fail: until then every Knative
  # object would be refused); it then patches its CA into them
  kapply -f "$m/90-webhooks.yaml"
  poll 60 1 webhook_answers || die "the Knative webhook does not answer (kubectl apply --dry-run=server of a Knative Service fails)"
  k annotate --overwrite ns "$KS_NS" "tizi.dev/install-hash=$(install_hash)" >/dev/null
  log "Knative Serving ${KS_VERSION} + Traefik ${TRAEFIK_VERSION} installed and Available in $(since "$t0")s"
}

# delete_ns NS... — Knative Services, Deployments and pods first: with OrderedNamespaceDeletion (GA in
# Kubernetes 1.34) the namespace controller deletes pods first and requeues after their grace period
# (300 s for a revision pod or the webhook, 600 s for the activator) before it deletes anything else
# shellcheck disable=SC2317  # called through poll
no_pods() { [ -z "$(k -n "$1" get pods -o name 2>/dev/null)" ]; }
delete_ns() {
  local ns
  for ns in "$@"; do
    k get ns "$ns" >/dev/null 2>&1 || continue
    k -n "$ns" delete ksvc --all --wait=false >/dev/null 2>&1 || true
    k -n "$ns" delete deploy --all --wait=false >/dev/null 2>&1 || true
    # a revision pod's queue-proxy drains for 30 s on SIGTERM: not worth waiting for here
    k -n "$ns" delete pods --all --force --grace-period=0 >/dev/null 2>&1 || true
    poll 120 0.5 no_pods "$ns" || true
    k delete ns "$ns" --wait=true --timeout 120s >/dev/null
  done
}

cmd_uninstall() {
  local m="${WORK}/manifests"
  [ -d "$m" ] || die "nothing rendered in ${m}: install first"
  k delete --ignore-not-found --wait=false -f "$m/90-webhooks.yaml" >/dev/null
  delete_ns "$SELFTEST_NS" "$KS_NS" "$TRAEFIK_NS"
  k delete --ignore-not-found -f "$m/20-rbac.yaml" -f "$m/60-traefik.yaml" >/dev/null 2>&1 || true
  log "uninstalled (the ${KS_VERSION} CRDs stay)"
}

# --- selftest --------------------------------------------------------------------------------------
# A static Go HTTP server on $PORT, FROM scratch: dev.local/tizi/knative-hello:<hash>. Sets HELLO_IMAGE.
build_hello() {
  local d="${WORK}/hello" hash
  mkdir -p "$d/ctx"
  cat > "$d/main.go" <<'EOF'
package main

import (
	"fmt"
	"net/http"
	"os"
)

func main() {
	host, _ := os.Hostname()
	http.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) { fmt.Fprintf(w, "hello from %s\n", host) })
	if err := http.ListenAndServe(":"+os.Getenv("PORT"), nil); err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
}
EOF
  printf 'module tizi.local/knativehello\n\ngo 1.22\n' > "$d/go.mod"
  printf 'FROM scratch\nCOPY hello /hello\nUSER 65532:65532\nENTRYPOINT ["/hello"]\n' > "$d/ctx/Dockerfile"
  hash="$(cat "$d/main.go" "$d/ctx/Dockerfile" | short_hash)"
  HELLO_IMAGE="dev.local/tizi/knative-hello:${hash}"
  if ! docker image inspect "$HELLO_IMAGE" >/dev/null 2>&1; then
    (cd "$d" && GOTOOLCHAIN=local GOFLAGS=-buildvcs=false CGO_ENABLED=0 go build -trimpath -ldflags "-s -w" -o ctx/hello .)
    DOCKER_BUILDKIT=1 /usr/bin/docker build -q -t "$HELLO_IMAGE" "$d/ctx" >/dev/null
  fi
  ctr_images | grep -q "^${HELLO_IMAGE} " || "${SCRIPTS}/cluster.sh" import-image "$HELLO_IMAGE" >/dev/null 2>&1
}

# http_code URL HOST — the status of one GET through Traefik (000 when no answer)
http_code() { curl -s -o /dev/null -w '%{http_code}' --max-time "${3:-10}" -H "Host: $2" "$1" || true; }

pods_of_hello() {  # pods of the selftest service not being deleted (a queue-proxy drains 30 s on SIGTERM)
  k -n "$SELFTEST_NS" get pods -l serving.knative.dev/service=hello \
    -o jsonpath='{range .items[*]}{.metadata.name} {.metadata.deletionTimestamp}{"\n"}{end}' 2>/dev/null \
    | awk 'NF == 1 { n++ } END { print n + 0 }'
}
replicas_of_hello() {  # the revision Deployment's desired replicas (what the autoscaler decided)
  k -n "$SELFTEST_NS" get deploy -l serving.knative.dev/service=hello -o jsonpath='{.items[0].spec.replicas}' 2>/dev/null || true
}

cmd_selftest() {
  local fail=0 t0 host tip code
  check() { if [ "$2" = 0 ]; then log "PASS $1"; else log "FAIL $1"; fail=1; fi; }
  deployments_available || die "Knative Serving is not installed and Available (run: $0 install)"
  build_hello
  delete_ns "$SELFTEST_NS"
  k create ns "$SELFTEST_NS" >/dev/null
  t0=$EPOCHREALTIME
  k apply -f - >/dev/null <<EOF
apiVersion: serving.knative.dev/v1
kind: Service
metadata:
  name: hello
  namespace: ${SELFTEST_NS}
spec:
  template:
    metadata:
      annotations:
        autoscaling.knative.dev/min-scale: "0"
    spec:
      containers:
      - image: ${HELLO_IMAGE}
        imagePullPolicy: IfNotPresent
        securityContext:
          runAsNonRoot: true
          allowPrivilegeEscalation: false
          capabilities: {drop: [ALL]}
          seccompProfile: {type: RuntimeDefault}
EOF
  local rc=0
  k -n "$SELFTEST_NS" wait ksvc/hello --for condition=Ready --timeout 180s >/dev/null || rc=$?
  local ready_s; ready_s="$(since "$t0")"
  check "Knative Service Ready in ${ready_s}s" "$rc"
  if [ "$rc" != 0 ]; then
    k -n "$SELFTEST_NS" get ksvc,rev,kingress,sks,pa,pods -o wide >&2 || true
    k -n "$SELFTEST_NS" get ksvc hello -o jsonpath='{.status.conditions}' >&2 || true
    return 1
  fi
  host="hello.${SELFTEST_NS}.${KS_DOMAIN}"
  tip="$(k -n "$TRAEFIK_NS" get svc traefik -o jsonpath='{.spec.clusterIP}')"
  log "URL $(k -n "$SELFTEST_NS" get ksvc hello -o jsonpath='{.status.url}') -> curl -H 'Host: ${host}' http://${tip}/"
  code=000
  for _ in $(seq 1 30); do code="$(http_code "http://${tip}/" "$host")"; [ "$code" = 200 ] && break; sleep 0.5; done
  check "GET through Traefik (Host: ${host}) -> ${code}" "$([ "$code" = 200 ] && echo 0 || echo 1)"
  local last=$EPOCHREALTIME to_zero=""
  log "waiting for scale to zero (stable-window ${KS_STABLE_WINDOW}, grace ${KS_GRACE}, $(pods_of_hello) pod(s) now)"
  rc=1
  for _ in $(seq 1 240); do
    if [ -z "$to_zero" ] && [ "$(replicas_of_hello)" = 0 ]; then to_zero="$(since "$last")"; fi
    if [ -n "$to_zero" ] && [ "$(pods_of_hello)" = 0 ]; then rc=0; break; fi
    sleep 0.5
  done
  check "scaled to zero: replicas 0 after ${to_zero:-?}s, no running pod after $(since "$last")s (since the last request)" "$rc"
  t0=$EPOCHREALTIME
  code="$(http_code "http://${tip}/" "$host" 120)"
  local cold; cold="$(since "$t0" 2)"
  check "cold start from zero: ${code} in ${cold}s ($(pods_of_hello) pod(s) now)" "$([ "$code" = 200 ] && echo 0 || echo 1)"
  t0=$EPOCHREALTIME; code="$(http_code "http://${tip}/" "$host")"
  log "warm request: ${code} in $(since "$t0" 3)s"
  if [ "${TIZI_SELFTEST_KEEP:-}" != 1 ]; then
    t0=$EPOCHREALTIME; delete_ns "$SELFTEST_NS"; log "selftest namespace deleted in $(since "$t0")s"
  fi
  return "$fail"
}

main() {
  case "${1:-all}" in
    all) cmd_install; cmd_selftest ;;
    images) cmd_images ;;
    install) cmd_install ;;
    selftest) cmd_selftest ;;
    uninstall) cmd_uninstall ;;
    *) echo "usage: $0 [all|images|install|selftest|uninstall]" >&2; exit 2 ;;
  esac
}

main "$@"; exit $?
