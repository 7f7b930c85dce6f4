# shellcheck shell=bash
# scripts/cluster/certs.sh — sourced by scripts/cluster.sh: the cluster CA, every component's
# key and certificate (openssl, in ${PKI} = /var/lib/tizi-cluster/pki) and the kubeconfigs.

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

# The aggregation layer's own CA and the API server's client certificate under it: the API
# server proxies /apis/metrics.k8s.io to metrics-server with that certificate and the user in
# X-Remote-* headers, which metrics-server trusts only from a client of this CA (named
# front-proxy-client). A CA apart from the cluster's, as kubeadm does.
front_proxy_pki() {
  if [ ! -f "${PKI}/front-proxy-ca.crt" ]; then
    openssl genrsa -out "${PKI}/front-proxy-ca.key" 2048 2>/dev/null
    openssl req -x509 -new -nodes -key "${PKI}/front-proxy-ca.key" -subj "/CN=tizi-front-proxy-ca" -days 3650 \
      -sha256 -addext "basicConstraints=critical,CA:TRUE" -addext "keyUsage=critical,keyCertSign,cRLSign" \
      -out "${PKI}/front-proxy-ca.crt" 2>/dev/null
  fi
  [ -f "${PKI}/front-proxy-client.crt" ] && return 0
  openssl genrsa -out "${PKI}/front-proxy-client.key" 2048 2>/dev/null
  openssl req -new -key "${PKI}/front-proxy-client.key" -subj "/CN=front-proxy-client" \
    -out "${PKI}/front-proxy-client.csr" 2>/dev/null
  printf 'basicConstraints=critical,CA:FALSE\nkeyUsage=critical,digitalSignature,keyEncipherment\nextendedKeyUsage=clientAuth\n' \
    > "${PKI}/front-proxy-client.ext"
  openssl x509 -req -in "${PKI}/front-proxy-client.csr" -CA "${PKI}/front-proxy-ca.crt" \
    -CAkey "${PKI}/front-proxy-ca.key" -CAcreateserial -days 3650 -sha256 \
    -extfile "${PKI}/front-proxy-client.ext" -out "${PKI}/front-proxy-client.crt" 2>/dev/null
  rm -f "${PKI}/front-proxy-client.csr" "${PKI}/front-proxy-client.ext"
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
  front_proxy_pki
  if [ ! -f "${PKI}/sa.key" ]; then
    openssl genrsa -out "${PKI}/sa.key" 2048 2>/dev/null
    openssl rsa -in "${PKI}/sa.key" -pubout -out "${PKI}/sa.pub" 2>/dev/null
  fi
  echo "${ip} ${NODE_NAME}" > "${PKI}/.identity"
}

# kubeconfig FILE CERTNAME CONTEXT EMBED(0|1)
#   EMBED=1: certificates inline, cluster/user/context all named CONTEXT (the admin kubeconfig
#   handed out by `env`); EMBED=0: file paths into ${PKI}, cluster and context "tizi", user CERTNAME.
kubeconfig() {
  local f="$1" c="$2" ctx="$3" embed="$4" tmp="$1.tmp"
  local cluster=tizi user="$2" ca crt key
  if [ "$embed" = 1 ]; then
    cluster="$ctx"; user="$ctx"
    ca="certificate-authority-data: $(base64 -w0 "${PKI}/ca.crt")"
    crt="client-certificate-data: $(base64 -w0 "${PKI}/${c}.crt")"
    key="client-key-data: $(base64 -w0 "${PKI}/${c}.key")"
  else
    ca="certificate-authority: ${PKI}/ca.crt"
    crt="client-certificate: ${PKI}/${c}.crt"
    key="client-key: ${PKI}/${c}.key"
  fi
  cat > "$tmp" <<EOT
apiVersion: v1
kind: Config
clusters:
- name: ${cluster}
  cluster:
    server: https://127.0.0.1:${API_PORT}
    ${ca}
users:
- name: ${user}
  user:
    ${crt}
    ${key}
contexts:
- name: ${cluster}
  context:
    cluster: ${cluster}
    user: ${user}
current-context: ${cluster}
EOT
  chmod 600 "$tmp"; mv "$tmp" "$f"
}
