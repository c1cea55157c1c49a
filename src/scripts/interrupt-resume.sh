#!/usr/bin/env bash
# Fault check, run by hand (not in CI): stop `casp compress` with kill -9 or SIGINT at random
# points, continue each run with --resume, and compare the result byte for byte with an
# uninterrupted run. Then damage a checkpoint (a flipped byte in a block file, in the activations,
# in state.json; changed weights) and check that --resume refuses it with exit 2.
#
#   src/scripts/interrupt-resume.sh [WORK_DIR]
#
# TRIALS (20), SEED (1), MODEL (stories260K), METHOD (gptq), BITS (2), SAMPLES (8) and SEQ_LEN
# (256) override the defaults. Prints one line per trial and a summary; exits 1 on any mismatch.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/common.sh" "$@" # sets here, shared; answers -h
work="${1:-$(mktemp -d)}"
TRIALS="${TRIALS:-20}"
SEED="${SEED:-1}"
MODEL="${MODEL:-$shared/models/stories260K/model}"
TEXT="${TEXT:-$shared/models/stories260K/reference/eval.txt}"
METHOD="${METHOD:-gptq}"
BITS="${BITS:-2}"
SAMPLES="${SAMPLES:-8}"
SEQ_LEN="${SEQ_LEN:-256}"
casp="$here/casp"
"$casp" --version >/dev/null # builds the jar if needed
mkdir -p "$work"
args=(compress --model "$MODEL" --calib "$TEXT" --method "$METHOD" --bits "$BITS" --samples "$SAMPLES" --seq-len "$SEQ_LEN")
RANDOM=$SEED
# Background commands of a script start with SIGINT ignored (and a JVM keeps ignoring it): reset it.
# env execs the launcher, which execs java, so $! is the JVM's pid.
if env --default-signal=INT true 2>/dev/null; then interruptible=(env --default-signal=INT); else set -m; interruptible=(); fi
now_ms() { date +%s%3N; }

echo "reference run (uninterrupted) ..."
rm -rf "$work/ref"
t0=$(now_ms)
"$casp" "${args[@]}" --out "$work/ref" >/dev/null 2>"$work/ref.log"
ref_ms=$(( $(now_ms) - t0 ))
echo "reference: $ref_ms ms"

fail=0
identical=0
for i in $(seq 1 "$TRIALS"); do
  out="$work/t$i"
  rm -rf "$out" "$out.partial" "$work/.t$i".*
  sig=$([ $((i % 2)) -eq 0 ] && echo KILL || echo INT)
  delay=$(( 300 + RANDOM * (ref_ms + 500) / 32768 )) # from JVM start-up to past the end of an uninterrupted run
  "${interruptible[@]}" "$casp" "${args[@]}" --out "$out" >/dev/null 2>"$work/t$i.log" &
  pid=$!
  sleep "$(awk -v ms="$delay" 'BEGIN { printf "%.3f", ms / 1000 }')"
  # the launcher execs java, so pid is the JVM
  kill -s "$sig" "$pid" 2>/dev/null || true
  wait "$pid" 2>/dev/null && first=done || first=stopped
  blocks=$(grep -o '"block-[0-9]*.safetensors"' "$out.partial/state.json" 2>/dev/null | wc -l || true)
  if [ ! -d "$out" ]; then
    "$casp" "${args[@]}" --out "$out" --resume >/dev/null 2>>"$work/t$i.log" || { echo "trial $i: resume failed"; fail=1; continue; }
  fi
  if cmp -s "$work/ref/model.safetensors" "$out/model.safetensors" && cmp -s "$work/ref/config.json" "$out/config.json" \
      && "$casp" verify "$out" >/dev/null 2>&1; then
    identical=$((identical + 1)); result=identical
  else
    result=DIFFERENT; fail=1
  fi
  left=$(cd "$work" && ls -A | grep -E "^(\.t$i\.|t$i\.partial)" || true)
  [ -n "$left" ] && { result="$result, left behind: $left"; fail=1; }
  echo "trial $i: SIG$sig after ${delay} ms ($first, $blocks block(s) checkpointed) -> $result"
  rm -rf "$out"
done
echo "interrupted runs resumed byte-identical: $identical / $TRIALS"

# A damaged or changed checkpoint must be refused.
damaged() { # damaged NAME: runs until the first checkpointed block, then stops the run with kill -9
  out="$work/$1"
  rm -rf "$out" "$out.partial"
  "$casp" "${args[@]}" --out "$out" >/dev/null 2>&1 &
  pid=$!
  for _ in $(seq 1 600); do
    grep -q '"activations-' "$out.partial/state.json" 2>/dev/null && break
    sleep 0.05
  done
  kill -s KILL "$pid" 2>/dev/null || true
  wait "$pid" 2>/dev/null || true
}
flip() { # flip FILE: xor one byte near the end of the file
  local size off byte
  size=$(stat -c %s "$1"); off=$((size - 7))
  byte=$(od -An -tu1 -j "$off" -N1 "$1" | tr -d ' ')
  printf "$(printf '\\%03o' $((byte ^ 16)))" | dd of="$1" bs=1 seek="$off" conv=notrunc status=none
}
refused=0
checks=0
for what in block activations state weights; do
  damaged "d-$what"
  cp_dir="$work/d-$what.partial"
  model_arg=("${args[@]}")
  case $what in
    block) flip "$(ls "$cp_dir"/block-*.safetensors | head -1)" ;;
    activations) flip "$(ls "$cp_dir"/activations-*.safetensors | head -1)" ;;
    state) sed -i 's/"seconds" : \([0-9]\)/"seconds" : 9\1/' "$cp_dir/state.json" ;;
    weights)
      rm -rf "$work/model-copy"; cp -r "$MODEL" "$work/model-copy"; chmod -R u+w "$work/model-copy"
      # the checkpoint was made from $MODEL: resume it with a copy whose weights differ in one byte
      rm -rf "$cp_dir"; damaged_model="$work/model-copy"
      "$casp" compress --model "$damaged_model" --calib "$TEXT" --method "$METHOD" --bits "$BITS" --samples "$SAMPLES" \
        --seq-len "$SEQ_LEN" --out "$work/d-$what" >/dev/null 2>&1 & pid=$!
      for _ in $(seq 1 600); do grep -q '"activations-' "$cp_dir/state.json" 2>/dev/null && break; sleep 0.05; done
      kill -s KILL "$pid" 2>/dev/null || true; wait "$pid" 2>/dev/null || true
      flip "$damaged_model/model.safetensors"
      model_arg=(compress --model "$damaged_model" --calib "$TEXT" --method "$METHOD" --bits "$BITS" --samples "$SAMPLES" --seq-len "$SEQ_LEN") ;;
  esac
  checks=$((checks + 1))
  set +e
  "$casp" "${model_arg[@]}" --out "$work/d-$what" --resume >/dev/null 2>"$work/d-$what.err"
  rc=$?
  set -e
  msg=$(grep -v '^WARNING: Using incubator' "$work/d-$what.err" || true)
  if [ "$rc" = 2 ] && [ "$(echo "$msg" | wc -l)" = 1 ] && [ ! -d "$work/d-$what" ]; then
    refused=$((refused + 1)); echo "damaged $what: refused (exit 2): $msg"
  else
    echo "damaged $what: NOT refused (exit $rc): $msg"; fail=1
  fi
done
echo "damaged checkpoints refused: $refused / $checks"
exit $fail
