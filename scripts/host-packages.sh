#!/usr/bin/env bash
# Debian packages the tests use on the host, installed when missing (idempotent):
#   minisign  the stock verifier operators run on signed offline bundles (tests prove ours verify)
#   zstd      the stock decompressor of a bundle's image part
set -euo pipefail

LOG_TAG=host-packages
# shellcheck source=lib/common.sh
. "$(dirname "${BASH_SOURCE[0]}")/lib/common.sh"   # log, apt_install

missing=()
for tool in minisign zstd; do
  command -v "$tool" >/dev/null 2>&1 || missing+=("$tool")
done
if ((${#missing[@]})); then
  log "installing ${missing[*]}"
  apt_install "${missing[@]}"
fi
log "ready: $(minisign -v 2>&1 | head -n1), $(zstd --version 2>&1 | head -n1)"
