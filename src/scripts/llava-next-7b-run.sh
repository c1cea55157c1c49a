#!/usr/bin/env bash
# Real-size LLaVA-NeXT runs on random-weight shape twins (casp synth): llava-v1.6-vicuna-7b on a
# photo, llava-next-video-7b on an 8-frame animated GIF panning across it (and on the photo too
# with PHOTO_ON_VIDEO=1). Prints,
# per run, the visual token count and the seconds spent in the vision tower, the projector and the
# language model (prefill + decode of --max-tokens new tokens). Random weights: the text is noise;
# the shapes, token counts and times are the real ones. Each twin (~14 GB) is deleted after use.
# Run it alone (it needs ~15 GB of RAM): flock /tmp/casp-timing.lock src/scripts/llava-next-7b-run.sh
# Environment: SCRATCH (default /tmp/casp-llava-next), LAYERS (keep N decoder layers: a quick
# smoke run), MAX_TOKENS (default 4), PHOTO (default ../shared/images/photos/chelsea.png), CASP_JAR
# (run this jar instead of ./casp, e.g. a copy that later source edits do not rebuild), TWINS (the
# synth names to run, default both), REUSE=1 (run twins already in SCRATCH instead of writing them).
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/common.sh" "$@"
scratch="${SCRATCH:-/tmp/casp-llava-next}"
photo="${PHOTO:-$shared/images/photos/chelsea.png}"
max="${MAX_TOKENS:-4}"
mkdir -p "$scratch"
casp() {
  if [ -n "${CASP_JAR:-}" ]; then java --add-modules jdk.incubator.vector -XX:MaxRAMPercentage=75 -XX:+UseG1GC -XX:MaxNewSize=1g -jar "$CASP_JAR" "$@"
  else "$here/casp" "$@"; fi
}
java "$here/src/scripts/PanGif.java" "$photo" "$scratch/pan.gif" 8

run() { # twin, label, generate options...
  local twin="$1" label="$2"; shift 2
  local t0 json
  t0=$(date +%s.%N)
  json=$(casp generate --model "$twin" --prompt "Describe what you see." --max-tokens "$max" --json "$@")
  printf '%-24s %-18s visual tokens %5s | vision tower %7.1f s | projector %6.2f s | language model %7.1f s | wall %7.1f s\n' \
    "$(basename "$twin")" "$label" "$(field visual_tokens <<<"$json")" "$(field vision_tower_s <<<"$json")" \
    "$(field projector_s <<<"$json")" "$(field language_model_s <<<"$json")" "$(echo "$(date +%s.%N) - $t0" | bc)"
}

for like in ${TWINS:-llava-v1.6-vicuna-7b llava-next-video-7b}; do
  twin="$scratch/$like"
  if [ -z "${REUSE:-}" ] || [ ! -f "$twin/config.json" ]; then
    rm -rf "$twin"
    casp synth --like "$like" --out "$twin" ${LAYERS:+--layers "$LAYERS"} >/dev/null
  fi
  if [ "$like" = llava-v1.6-vicuna-7b ] || [ -n "${PHOTO_ON_VIDEO:-}" ]; then
    run "$twin" "photo $(basename "$photo")" --image "$photo"
  fi
  if [ "$like" = llava-next-video-7b ]; then run "$twin" "8-frame GIF" --video "$scratch/pan.gif" --frames 8; fi
  rm -rf "$twin"
done
