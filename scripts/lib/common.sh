# shellcheck shell=bash
# scripts/lib/common.sh — the one shell library of scripts/: sourced (never run) by
# cluster.sh, toolchain.sh, engines.sh, build-image.sh and build-docker-standin.sh.
#
# Before sourcing, a script may set
#   LOG_TAG=name     the [name] of its log lines (default: the script's file name)
#   LOG_ELAPSED=1    add the seconds since the script started: [name    1.2s] ...
#
# It defines, and changes nothing else (no `set`, no exports, no files written):
#   SCRIPTS ROOT CACHE            scripts/, the clone, ${TIZI_CACHE:-$HOME/.cache/tizi}
#   log die elapsed               logging (stderr)
#   go_cache_env go_mod_field     the Go module/build caches under the cache; `go mod download -json` fields
#   poll pid_alive pidfile_alive stop_pidfile   waiting, and daemons with pid files
#   apt_install                   bookworm packages (the system's apt)
#   sid_apt sid_extract           Debian sid packages through a separate apt state, never installed
#   hash_files short_hash         content hashes for cache keys

# --- paths ---------------------------------------------------------------------
SCRIPTS="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
# shellcheck disable=SC2034  # used by the scripts that source this file
ROOT="$(cd "${SCRIPTS}/.." && pwd)"
CACHE="${TIZI_CACHE:-$HOME/.cache/tizi}"

# --- logging -------------------------------------------------------------------
LOG_TAG="${LOG_TAG:-$(basename "$0" .sh)}"
LOG_ELAPSED="${LOG_ELAPSED:-0}"
_tizi_t0="${EPOCHREALTIME/[.,]/}"

elapsed() {  # seconds since common.sh was sourced, one decimal
  local n="${EPOCHREALTIME/[.,]/}"
  printf '%d.%d' $(( (n - _tizi_t0) / 1000000 )) $(( (n - _tizi_t0) / 100000 % 10 ))
}
log() {
  if [ "$LOG_ELAPSED" = 1 ]; then printf '[%s %6ss] %s\n' "$LOG_TAG" "$(elapsed)" "$*" >&2
  else printf '[%s] %s\n' "$LOG_TAG" "$*" >&2; fi
}
die() { log "ERROR: $*"; exit 1; }

# --- Go ------------------------------------------------------------------------
# Module and build caches outside the clone, shared by every Go build of the project.
go_cache_env() { export GOMODCACHE="${CACHE}/go/mod" GOCACHE="${CACHE}/go/build"; }

# go_mod_field MODULE@VERSION FIELD — one field (Dir, GoMod, …) of `go mod download -json`
go_mod_field() { go mod download -json "$1" | sed -n 's/.*"'"$2"'": "\(.*\)".*/\1/p'; }

# --- waiting and daemons -------------------------------------------------------
# poll TRIES INTERVAL_S CMD... — run CMD (output discarded) until it succeeds, at most TRIES times
poll() {
  local n="$1" s="$2" i; shift 2
  for ((i = 0; i < n; i++)); do
    "$@" >/dev/null 2>&1 && return 0
    sleep "$s"
  done
  return 1
}

# PID 1 on this VM does not reap orphans: a zombie must count as dead
pid_alive() { local st; st="$(cut -d' ' -f3 "/proc/$1/stat" 2>/dev/null)" && [ -n "$st" ] && [ "$st" != Z ] && [ "$st" != X ]; }
pidfile_alive() { local p; p="$(cat "$1" 2>/dev/null)" && [ -n "$p" ] && pid_alive "$p"; }

# stop_pidfile PIDFILE NAME [TIMEOUT_S] — SIGTERM, SIGKILL after TIMEOUT_S (15), remove the pid file
stop_pidfile() {
  local f="$1" name="$2" t="${3:-15}" p i
  p="$(cat "$f" 2>/dev/null)" || return 0
  if [ -n "$p" ] && pid_alive "$p"; then
    kill -TERM "$p" 2>/dev/null || true
    for ((i = 0; i < t * 10; i++)); do pid_alive "$p" || break; sleep 0.1; done
    pid_alive "$p" && { kill -KILL "$p" 2>/dev/null || true; sleep 0.2; }
    log "stopped ${name}"
  fi
  rm -f "$f"
}

# --- apt -----------------------------------------------------------------------
# apt_install PKG... — bookworm packages; apt's output goes to stderr. The dpkg lock
# timeout lets it wait for another apt run; a failure is retried once after
# `apt-get update` (a fresh machine has no lists). policy-rc.d (present on this
# machine) keeps postinst scripts from starting services.
apt_install() {
  local a=(-o DPkg::Lock::Timeout=600)
  DEBIAN_FRONTEND=noninteractive apt-get "${a[@]}" install -y -q --no-install-recommends "$@" >&2 || {
    apt-get "${a[@]}" update -q >&2
    DEBIAN_FRONTEND=noninteractive apt-get "${a[@]}" install -y -q --no-install-recommends "$@" >&2
  }
}

# sid_apt ARGS... — apt-get against Debian sid with its own sources, lists and archives
# under ${CACHE}/aptx; the system's sources and state are not touched.
sid_apt() {
  local ax="${CACHE}/aptx"
  mkdir -p "${ax}/lists/partial" "${ax}/archives/partial"
  printf 'deb http://deb.debian.org/debian sid main\n' > "${ax}/sources.list"
  apt-get -o "Dir::Etc::SourceList=${ax}/sources.list" -o Dir::Etc::SourceParts=/dev/null \
    -o "Dir::State::Lists=${ax}/lists" -o "Dir::Cache::Archives=${ax}/archives" -o APT::Sandbox::User=root "$@"
}

# sid_extract PKG DIR — download PKG from sid (lists fetched once) and `dpkg -x` it into DIR;
# sets SID_DEB to the .deb's file name. Not for $(…): it dies on failure.
sid_extract() {
  local pkg="$1" dir="$2" d
  if ! ls "${CACHE}"/aptx/lists/*sid*Packages* >/dev/null 2>&1; then
    sid_apt update -qq >/dev/null || die "apt-get update (sid) failed"
  fi
  d="$(mktemp -d)"
  (cd "$d" && sid_apt download -qq "$pkg" >/dev/null) || { rm -rf "$d"; die "apt-get download ${pkg} failed"; }
  dpkg -x "$d/${pkg}"_*.deb "$dir"
  # shellcheck disable=SC2034  # read by the caller
  SID_DEB="$(basename "$d/${pkg}"_*.deb)"
  rm -rf "$d"
}

# --- content hashes --------------------------------------------------------------
# NUL-separated file names on stdin -> their sha256sum lines in a stable (C) order
hash_files() { LC_ALL=C sort -z | xargs -0 sha256sum; }
# stdin -> the first 16 hex digits of its sha256
short_hash() { sha256sum | cut -c1-16; }
