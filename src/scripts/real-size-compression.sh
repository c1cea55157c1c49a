#!/usr/bin/env bash
# Compression of a LLaVA-1.5-7B shape twin in bounded memory, run by hand (not in CI): per-stage
# seconds per block, peak RSS, and the projected time for all 32 blocks, for CASP with the gptq,
# quip and aqlm backends at 2 bits.
#
#   src/scripts/real-size-compression.sh [WORK_DIR]
#
# Environment: LAYERS (decoder layers of the twin, default 2: full width, the first 2 of 32;
# LAYERS=32 is the whole 14 GB twin), SAMPLES (calibration conversations, default 128), MAX_BLOCKS
# (default 2), BACKENDS (default "gptq quip aqlm"), HEAP (JVM max heap, default 10g), KEEP=1 keeps
# the twin, CASP_JAR=FILE runs that jar instead of building target/casp.jar. Each heavy step runs
# under flock /tmp/casp-timing.lock (CASP_LOCK=none when the caller holds it).
# A run in parts (CASP measures all 32 layers before the first block: hours): MAX_MEASURED=N stops
# after N measured layers (--max-measured-layers), RESUME=1 continues the kept checkpoint of
# WORK_DIR/out-BACKEND (--resume) instead of starting over. GC_OPTS replaces the collector flags
# of the compress runs (default: the parallel collector with a 1 GB young generation, as the casp
# launcher runs compress; see there why not G1).
#
# The calibration set is SAMPLES LLaVA conversations over the photos of ../shared/images/photos
# (reused in turn), each a question and a long answer, cut by casp to the 576 image tokens plus at
# most 256 text tokens. The vision tower runs once per distinct photo.
#
# Projection to 128 samples when SAMPLES is smaller: the calibration forward passes and the
# Hessians grow with the number of tokens (scaled by 128 / SAMPLES); the low-rank step, the
# quantizers and reading the weights do not depend on it (kept as measured). CASP's measurement
# of the uncompressed model is one forward pass with Hessians (scaled) plus the backend's
# quantizer at two widths on five linears per layer (kept); its forward part is scaled likewise.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/common.sh" "$@" # sets here, shared; answers -h
work="${1:-$(mktemp -d)}"
LAYERS="${LAYERS:-2}"
SAMPLES="${SAMPLES:-128}"
MAX_BLOCKS="${MAX_BLOCKS:-2}"
BACKENDS="${BACKENDS:-gptq quip aqlm}"
HEAP="${HEAP:-10g}"
lock="${CASP_LOCK:-/tmp/casp-timing.lock}" # CASP_LOCK=none: the caller holds the lock already
locked() { if [ "$lock" = none ]; then "$@"; else flock "$lock" "$@"; fi; }
mkdir -p "$work"
if [ -n "${CASP_JAR:-}" ]; then # a given jar (no build)
  cp "$CASP_JAR" "$work/casp.jar"
else
  "$here/casp" --version >/dev/null # builds the jar if needed
  cp "$here/target/casp.jar" "$work/casp.jar" # a fixed copy: later source edits do not rebuild it mid-run
fi
casp() { java --add-modules jdk.incubator.vector -Xmx"$HEAP" -XX:+UseG1GC -jar "$work/casp.jar" "$@"; }

twin="$work/llava-1.5-7b-L$LAYERS"
if [ ! -f "$twin/config.json" ]; then
  locked java --add-modules jdk.incubator.vector -Xmx"$HEAP" -jar "$work/casp.jar" synth --like llava-1.5-7b \
    --out "$twin" $([ "$LAYERS" = 32 ] || echo "--layers $LAYERS") >&2
fi
du -sh "$twin"

# Calibration conversations.
calib="$work/calib"
mkdir -p "$calib/images"
photos=()
for p in "$shared"/images/photos/*; do
  case "$(basename "$p")" in truncated.jpg) continue ;; esac
  cp "$p" "$calib/images/$(basename "$p")" # copies: links that leave the images folder are refused
  photos+=("$(basename "$p")")
done
answer="The picture shows a scene with many details worth describing one by one."
for k in $(seq 1 40); do answer="$answer Detail number $k: the region near the edge has its own colour, texture and light."; done
{
  echo "["
  for i in $(seq 0 $((SAMPLES - 1))); do
    img="${photos[$((i % ${#photos[@]}))]}"
    [ "$i" -gt 0 ] && echo ","
    printf '{"id": "c%04d", "image": "%s", "conversations": [{"from": "human", "value": "<image>\\nDescribe image %d in detail."}, {"from": "gpt", "value": "%s"}]}' \
      "$i" "$img" "$i" "$answer"
  done
  echo "]"
} > "$calib/calib.json"

echo "load before: $(uptime)"
for backend in $BACKENDS; do
  out="$work/out-$backend"
  parts=()
  [ -n "${MAX_MEASURED:-}" ] && parts+=(--max-measured-layers "$MAX_MEASURED")
  if [ "${RESUME:-0}" = 1 ]; then parts+=(--resume); else rm -rf "$out" "$out.partial"; fi
  # shellcheck disable=SC2086 # GC_OPTS is a list of JVM flags
  locked /usr/bin/time -v java --add-modules jdk.incubator.vector -Xmx"$HEAP" ${GC_OPTS:--XX:+UseParallelGC -XX:NewSize=1g -XX:MaxNewSize=1g} -jar "$work/casp.jar" \
    compress --model "$twin" --calib "$calib/calib.json" --method casp --backend "$backend" --bits 2 --samples "$SAMPLES" \
    --max-blocks "$MAX_BLOCKS" "${parts[@]}" --out "$out" --json > "$work/$backend.json" 2> "$work/$backend.log" || { tail -5 "$work/$backend.log"; continue; }
  echo "== casp --backend $backend, $SAMPLES samples, $MAX_BLOCKS blocks of the $LAYERS-layer twin; load after: $(uptime)"
  grep -E "Maximum resident" "$work/$backend.log"
  if jq -e 'has("stopped_after_measured_layers")' "$work/$backend.json" > /dev/null; then # measurement in parts
    grep -E "casp: (measuring|resuming|stopped)" "$work/$backend.log" || true
    jq -r '"measured \(.stopped_after_measured_layers) of \(.layers) layers; this part \(.seconds * 10 | round / 10) s, peak RSS (JVM) \(.peak_rss_bytes / 1073741824 * 100 | round / 100) GiB"' "$work/$backend.json"
    continue
  fi
  jq -r --argjson s "$SAMPLES" '
    .cost as $c | (128 / $s) as $k |
    "peak RSS (JVM) \(.peak_rss_bytes / 1073741824 * 100 | round / 100) GiB; calibration activations \(.activation_bytes / 1048576 | round) MiB (spilled \(.activation_spilled_bytes))",
    "vision tower: \($c.once.vision_tower_seconds * 100 | round / 100) s for \($c.once.vision_tower_images) images",
    "CASP measurement: \($c.once.casp_measurement_seconds_per_layer * 10 | round / 10) s per layer, of which \($c.once.casp_measurement_forward_seconds_per_layer * 10 | round / 10) s forward + Hessians",
    "mean seconds per block: " + ([$c.mean_block_seconds | to_entries[] | "\(.key) \(.value * 10 | round / 10)"] | join(", ")),
    "cores busy per block: " + ([$c.blocks[] | (.cores_busy // 0) * 100 | round / 100 | tostring] | join(", ")),
    "projected, all \($c.layers) blocks at \($s) samples: \($c.projected_total_hours * 100 | round / 100) h",
    (($c.mean_block_seconds | (.forward + .hessians) * ($k - 1)) as $extra |
     (($c.once.calibration_inputs_seconds - $c.once.vision_tower_seconds) * ($k - 1)) as $embed |
     (($c.once.casp_measurement_forward_seconds_per_layer // 0) * ($k - 1)) as $probe |
     (32 * (($c.once.casp_measurement_seconds_per_layer // 0) + $c.mean_block_seconds.total + $extra + $probe)
      + $c.once.calibration_inputs_seconds + $embed) as $total |
     "projected, all 32 blocks of the 7B model at 128 samples (forward + Hessians x \($k)): \($total / 3600 * 100 | round / 100) h")
  ' "$work/$backend.json"
done
[ "${KEEP:-0}" = 1 ] || rm -rf "$twin"
