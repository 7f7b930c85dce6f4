# shellcheck shell=bash
# Source this (do not run it) to point Pulumi at a local, offline backend:
#
#   eval "$(scripts/toolchain.sh env)"   # tools on PATH, PULUMI_HOME, no update checks
#   . scripts/pulumi-offline.sh          # state + secrets passphrase, outside the repo
#
# - PULUMI_BACKEND_URL=file://${TIZI_CACHE}/state: stacks live in the cache, not
#   in Pulumi Cloud (unreachable here) and not in the clone.
# - PULUMI_CONFIG_PASSPHRASE_FILE=${TIZI_CACHE}/passphrase: the passphrase
#   secrets provider key, generated once at random with mode 0600. It stays
#   outside the repository so it is never committed; losing it makes the
#   secrets in the local stacks unreadable (destroy and re-create the stacks).
#
# It only sets variables: no `set -e`/`exit`, so it is safe in an interactive shell.

_tizi_cache="${TIZI_CACHE:-$HOME/.cache/tizi}"

if mkdir -p "$_tizi_cache/state"; then
  export PULUMI_BACKEND_URL="file://$_tizi_cache/state"

  _tizi_pass="$_tizi_cache/passphrase"
  if [[ ! -s "$_tizi_pass" ]]; then
    # umask in a subshell: the file is never readable by others, even briefly.
    (umask 077 && head -c 32 /dev/urandom | base64 | tr -d '\n=' >"$_tizi_pass")
  fi
  chmod 600 "$_tizi_pass"
  export PULUMI_CONFIG_PASSPHRASE_FILE="$_tizi_pass"
  # An inherited PULUMI_CONFIG_PASSPHRASE would take precedence over the file.
  unset PULUMI_CONFIG_PASSPHRASE
else
  echo "[pulumi-offline] cannot create $_tizi_cache/state" >&2
fi
unset _tizi_cache _tizi_pass
