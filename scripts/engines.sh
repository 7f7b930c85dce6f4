#!/usr/bin/env bash
# Local Docker engines for tizi's edge tests and benchmarks.
#
#   scripts/engines.sh start            default engine + simulated edge engine + its sshd
#   scripts/engines.sh stop             stop all three
#   scripts/engines.sh status           one line per daemon; exit 1 if any is down
#   scripts/engines.sh env              shell exports for both engines
#   scripts/engines.sh restart-edge     stop and start the edge engine only (restart tests)
#   scripts/engines.sh load-edge IMAGE  docker save IMAGE (default engine) | docker load (edge)
#
# Why a second engine: an edge site (clinic, farm, school) is a separate Docker host reached
# over ssh. A second dockerd with its own data-root, exec-root, socket and bridge, reached
# through a dedicated key-only sshd on 127.0.0.1:2222, exercises the same DOCKER_HOST=ssh://
# path without any machine but this one. Idempotent: a running daemon is left alone.
set -euo pipefail

LOG_TAG=engines
# shellcheck source=lib/common.sh
. "$(dirname "${BASH_SOURCE[0]}")/lib/common.sh"   # CACHE, log, apt_install, poll, pid_alive, stop_pidfile

SSH_DIR="$CACHE/ssh"
LOG_DIR="$CACHE/logs"
EDGE_ROOT="${TIZI_EDGE_ROOT:-/var/lib/tizi-edge}"
EDGE_SOCK="$EDGE_ROOT/docker.sock"
EDGE_BRIDGE="${TIZI_EDGE_BRIDGE:-edge0}"
EDGE_CIDR="${TIZI_EDGE_CIDR:-172.31.0.1/16}"
SSH_PORT="${TIZI_EDGE_SSH_PORT:-2222}"
SSH_HOST_ALIAS="tizi-edge"
SSHD_PID="$SSH_DIR/sshd.pid"
DEFAULT_SOCK="/var/run/docker.sock"
# The docker CLI 28.x in /usr/local/bin talks to the 20.10 engine fine.
DOCKER="${DOCKER:-docker}"

ensure_packages() {
  local missing=()
  command -v dockerd >/dev/null || missing+=(docker.io)
  [ -x /usr/sbin/sshd ] || missing+=(openssh-server)
  command -v ssh-keygen >/dev/null || missing+=(openssh-client)
  command -v ip >/dev/null || missing+=(iproute2)
  if [ "${#missing[@]}" -gt 0 ]; then
    log "installing ${missing[*]}"
    apt_install "${missing[@]}"
  fi
  command -v docker >/dev/null || { log "no docker CLI after install"; exit 1; }
}

engine_up() { # $1 = socket path
  [ -S "$1" ] && timeout 10 "$DOCKER" -H "unix://$1" version --format '{{.Server.Version}}' \
    >/dev/null 2>&1
}

wait_engine() { # $1 = socket, $2 = name, $3 = log file
  poll 150 0.2 engine_up "$1" && return 0
  log "$2 did not come up within 30 s; last log lines:"
  tail -n 20 "$3" >&2 || true
  return 1
}

# The default engine runs containers through scripts/runc-bounded: `--privileged` (kind's
# nodes) asks for every capability, and this host's bounding set lacks CAP_SYS_RESOURCE. The
# wrapper is copied outside the clone, since the daemon outlives it.
RUNC_BOUNDED="${CACHE}/bin/runc-bounded"

install_runc_bounded() {
  mkdir -p "$(dirname "$RUNC_BOUNDED")"
  cmp -s "${SCRIPTS}/runc-bounded" "$RUNC_BOUNDED" && return 0
  cp "${SCRIPTS}/runc-bounded" "${RUNC_BOUNDED}.tmp" && chmod 0755 "${RUNC_BOUNDED}.tmp"
  mv "${RUNC_BOUNDED}.tmp" "$RUNC_BOUNDED"
}

start_default() {
  install_runc_bounded
  if engine_up "$DEFAULT_SOCK"; then
    local runtime; runtime="$("$DOCKER" -H "unix://$DEFAULT_SOCK" info -f '{{.DefaultRuntime}}' 2>/dev/null)"
    if ! ip link show docker0 >/dev/null 2>&1; then
      # seen once here: docker0 deleted under a running daemon, which then fails every
      # `docker run` on the default bridge; only a restart recreates it
      log "docker0 is missing under the running default dockerd: restarting it"
    elif [ "$runtime" != runc-bounded ]; then
      log "the default dockerd runs runtime ${runtime}, not runc-bounded: restarting it"
    else
      return 0
    fi
    stop_pidfile /var/run/docker.pid "default dockerd"
  elif pidfile_alive /var/run/docker.pid; then
    # a daemon starting, or stopping its containers (10 s each before it kills them): a second
    # dockerd would exit at once on the pidfile
    log "a default dockerd runs but does not answer yet: waiting for it"
    wait_engine "$DEFAULT_SOCK" "default dockerd" "$LOG_DIR/dockerd.log" 2>/dev/null && return 0
    stop_pidfile /var/run/docker.pid "default dockerd" 60
  fi
  log "starting the default dockerd (log: $LOG_DIR/dockerd.log)"
  nohup dockerd --add-runtime "runc-bounded=${RUNC_BOUNDED}" --default-runtime runc-bounded \
    >>"$LOG_DIR/dockerd.log" 2>&1 </dev/null &
  wait_engine "$DEFAULT_SOCK" "default dockerd" "$LOG_DIR/dockerd.log"
}

ensure_bridge() {
  if ! ip link show "$EDGE_BRIDGE" >/dev/null 2>&1; then
    ip link add "$EDGE_BRIDGE" type bridge
  fi
  # Capture first: `ip … | grep -q` under pipefail fails when grep exits early (SIGPIPE).
  local addrs
  addrs="$(ip -4 addr show dev "$EDGE_BRIDGE")"
  [[ "$addrs" == *"inet ${EDGE_CIDR%/*}/"* ]] || ip addr add "$EDGE_CIDR" dev "$EDGE_BRIDGE"
  ip link set "$EDGE_BRIDGE" up
}

start_edge_engine() {
  if engine_up "$EDGE_SOCK"; then return 0; fi
  mkdir -p "$EDGE_ROOT/data" "$EDGE_ROOT/exec"
  ensure_bridge
  # A stale pidfile from a killed daemon makes dockerd refuse to start.
  if [ -f "$EDGE_ROOT/docker.pid" ] && ! pidfile_alive "$EDGE_ROOT/docker.pid"; then
    rm -f "$EDGE_ROOT/docker.pid"
  fi
  log "starting the edge dockerd (log: $LOG_DIR/edge-dockerd.log)"
  local tcp=()
  [ "${TIZI_EDGE_TCP:-0}" = 1 ] && tcp=(-H tcp://127.0.0.1:2375)
  nohup dockerd --data-root "$EDGE_ROOT/data" --exec-root "$EDGE_ROOT/exec" \
    --pidfile "$EDGE_ROOT/docker.pid" -H "unix://$EDGE_SOCK" "${tcp[@]}" \
    --bridge "$EDGE_BRIDGE" --iptables=false --ip-masq=false \
    >>"$LOG_DIR/edge-dockerd.log" 2>&1 </dev/null &
  wait_engine "$EDGE_SOCK" "edge dockerd" "$LOG_DIR/edge-dockerd.log"
}

# The edge engine leaves iptables alone (two daemons would fight over Docker's chains), but
# with br_netfilter loaded (the test cluster needs it) bridged packets cross the host's
# FORWARD chain, whose policy the default engine sets to DROP: containers on one of the edge
# engine's own networks (a site's gateway and payload) could not reach each other. A real
# site's engine manages its own rules. Here one rule accepts traffic that stays on one bridge
# (what Docker allows on its own networks anyway; routed traffic between networks is not
# matched). Not --default-address-pool for the edge engine: with it, every edge dockerd start
# deleted the default engine's docker0 (seen here). Idempotent.
allow_edge_networks() {
  command -v iptables >/dev/null || return 0
  local chain=FORWARD
  if iptables -n -L DOCKER-USER >/dev/null 2>&1; then chain="DOCKER-USER"; fi
  iptables -C "$chain" -m physdev --physdev-is-bridged -j ACCEPT 2>/dev/null \
    || iptables -I "$chain" -m physdev --physdev-is-bridged -j ACCEPT
}

ensure_ssh_material() {
  mkdir -p "$SSH_DIR"
  chmod 700 "$SSH_DIR"
  [ -f "$SSH_DIR/id_ed25519" ] || ssh-keygen -q -t ed25519 -N '' -C tizi-edge-client \
    -f "$SSH_DIR/id_ed25519"
  [ -f "$SSH_DIR/host_ed25519_key" ] || ssh-keygen -q -t ed25519 -N '' -C tizi-edge-host \
    -f "$SSH_DIR/host_ed25519_key"
  cp "$SSH_DIR/id_ed25519.pub" "$SSH_DIR/authorized_keys"
  chmod 600 "$SSH_DIR/authorized_keys"
  printf '[127.0.0.1]:%s %s\n' "$SSH_PORT" "$(cut -d' ' -f1,2 "$SSH_DIR/host_ed25519_key.pub")" \
    >"$SSH_DIR/known_hosts"
  # SetEnv points `docker system dial-stdio`, run by the docker CLI's ssh helper on the
  # "remote" side, at the edge engine's socket instead of the default one.
  cat >"$SSH_DIR/sshd_config" <<EOF
# Written by scripts/engines.sh: the simulated edge host's sshd. Key-only, loopback only.
Port $SSH_PORT
ListenAddress 127.0.0.1
HostKey $SSH_DIR/host_ed25519_key
PidFile $SSHD_PID
AuthorizedKeysFile $SSH_DIR/authorized_keys
PermitRootLogin prohibit-password
PasswordAuthentication no
KbdInteractiveAuthentication no
PubkeyAuthentication yes
UsePAM no
X11Forwarding no
AllowTcpForwarding no
PrintMotd no
MaxStartups 50:30:100
MaxSessions 50
SetEnv DOCKER_HOST=unix://$EDGE_SOCK
EOF
  # The client side: an entry `Host tizi-edge` in ~/.ssh/config, kept between markers.
  # ControlMaster makes the docker CLI's one-ssh-per-command cheap.
  mkdir -p "$HOME/.ssh"
  chmod 700 "$HOME/.ssh"
  local cfg="$HOME/.ssh/config" block
  block="# >>> tizi-edge (scripts/engines.sh) >>>
Host $SSH_HOST_ALIAS
  HostName 127.0.0.1
  Port $SSH_PORT
  User root
  IdentityFile $SSH_DIR/id_ed25519
  IdentitiesOnly yes
  UserKnownHostsFile $SSH_DIR/known_hosts
  StrictHostKeyChecking yes
  BatchMode yes
  ControlMaster auto
  ControlPath $SSH_DIR/cm-%r@%h:%p
  ControlPersist 120
# <<< tizi-edge <<<"
  touch "$cfg"
  chmod 600 "$cfg"
  if ! grep -qF "$block" "$cfg"; then
    # Drop an outdated block, then put ours first: ssh uses the first value it finds.
    sed -i '/^# >>> tizi-edge/,/^# <<< tizi-edge/d' "$cfg"
    { printf '%s\n' "$block"; cat "$cfg"; } >"$cfg.tmp" && mv "$cfg.tmp" "$cfg"
  fi
}

sshd_up() { pidfile_alive "$SSHD_PID"; }

start_sshd() {
  ensure_ssh_material
  if sshd_up; then return 0; fi
  mkdir -p /run/sshd
  chmod 755 /run/sshd
  log "starting the edge sshd on 127.0.0.1:$SSH_PORT (log: $LOG_DIR/edge-sshd.log)"
  /usr/sbin/sshd -f "$SSH_DIR/sshd_config" -E "$LOG_DIR/edge-sshd.log"
  poll 50 0.2 ssh -o ConnectTimeout=2 "$SSH_HOST_ALIAS" true && return 0
  log "sshd not reachable as $SSH_HOST_ALIAS"
  tail -n 20 "$LOG_DIR/edge-sshd.log" >&2 || true
  return 1
}

# stop_pidfile (lib/common.sh): SIGTERM, SIGKILL after 30 s; a zombie (PID 1 here does not
# reap orphans) counts as stopped.
stop_edge_engine() { stop_pidfile "$EDGE_ROOT/docker.pid" "edge dockerd" 30; }

stop_all() {
  ssh -O exit "$SSH_HOST_ALIAS" >/dev/null 2>&1 || true
  stop_pidfile "$SSHD_PID" "edge sshd" 30
  stop_edge_engine
  stop_pidfile /var/run/docker.pid "default dockerd" 30
}

status() {
  local rc=0
  if engine_up "$DEFAULT_SOCK"; then echo "default engine: up (unix://$DEFAULT_SOCK)"
  else echo "default engine: down"; rc=1; fi
  if engine_up "$EDGE_SOCK"; then echo "edge engine: up (unix://$EDGE_SOCK)"
  else echo "edge engine: down"; rc=1; fi
  if sshd_up; then echo "edge sshd: up (ssh://$SSH_HOST_ALIAS = 127.0.0.1:$SSH_PORT)"
  else echo "edge sshd: down"; rc=1; fi
  return $rc
}

print_env() {
  cat <<EOF
export TIZI_DEFAULT_DOCKER_HOST=unix://$DEFAULT_SOCK
export TIZI_EDGE_DOCKER_HOST=ssh://$SSH_HOST_ALIAS
export TIZI_EDGE_DOCKER_SOCK=unix://$EDGE_SOCK
EOF
}

# Edge containers use host networking and roll by starting the new container on the same
# port (SO_REUSEPORT) before the old one drains; with tcp_migrate_req the connections still
# queued on the old listener move to the new one instead of being reset. Sites set it too.
tune_kernel() {
  if [[ "$(sysctl -n net.ipv4.tcp_migrate_req 2>/dev/null)" != 1 ]]; then
    sysctl -q -w net.ipv4.tcp_migrate_req=1 || log "warning: cannot set net.ipv4.tcp_migrate_req=1"
  fi
}

start_all() {
  mkdir -p "$LOG_DIR"
  tune_kernel
  ensure_packages
  start_default
  start_edge_engine
  allow_edge_networks
  start_sshd
}

cmd="${1:-status}"
case "$cmd" in
  start) start_all; status ;;
  stop) stop_all ;;
  status) status ;;
  env) print_env ;;
  restart-edge)
    mkdir -p "$LOG_DIR"
    stop_edge_engine
    start_edge_engine
    allow_edge_networks
    ;;
  load-edge)
    image="${2:?usage: engines.sh load-edge IMAGE}"
    start_all >/dev/null
    log "docker save $image | docker load (edge)"
    "$DOCKER" -H "unix://$DEFAULT_SOCK" save "$image" | "$DOCKER" -H "unix://$EDGE_SOCK" load
    ;;
  *)
    echo "usage: $0 start|stop|status|env|restart-edge|load-edge IMAGE" >&2
    exit 2
    ;;
esac
