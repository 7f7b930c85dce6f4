# shellcheck shell=bash
# scripts/cluster/selftest.sh — sourced by scripts/cluster.sh: `selftest` proves the running
# cluster end to end (PodSecurity, kube-proxy ClusterIPs, port-forward, logs, exec, pod-to-pod,
# pod-to-API, Knative dry-run when its CRDs are applied) with a small Go HTTP server image
# built into ${KDIR}/selftest/ and the manifests selftest*.yaml beside this file.

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
  # a free local port: a fixed one can be held by a deployed edge stack (host networking)
  local pf_port
  pf_port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
  "${k[@]}" -n tizi-selftest port-forward svc/echo "${pf_port}:80" >"$pf_log" 2>&1 &
  local pf=$!
  check "kubectl port-forward svc/echo ${pf_port}:80" \
    bash -c "for i in \$(seq 1 40); do curl -sf --max-time 2 http://127.0.0.1:${pf_port}/ && exit 0; sleep 0.5; done; exit 1"
  kill "$pf" 2>/dev/null || true; wait "$pf" 2>/dev/null || true; rm -f "$pf_log"
  check "kubectl logs" "${k[@]}" -n tizi-selftest logs deploy/echo --tail 1
  check "kubectl exec + pod -> own Service ClusterIP (hairpin)" \
    "${k[@]}" -n tizi-selftest exec deploy/echo -- /echo get "http://${cip}/"
  local pods
  # shellcheck disable=SC2207  # words: name ip name ip
  pods=($("${k[@]}" -n tizi-selftest get pods -l app=echo -o 'jsonpath={range .items[*]}{.metadata.name} {.status.podIP}{"\n"}{end}'))
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
