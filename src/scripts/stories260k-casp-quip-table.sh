#!/usr/bin/env bash
# stories260K at a 2-bit target: CASP with the QuIP# backend against QuIP# alone and CASP-GPTQ
# (Markdown). ppl on reference/eval.txt at ctx 256, KL to the float32 model, effective bits per
# original linear weight (everything stored counted: codes, signs, scales, zeros, factors).
#
#   src/scripts/stories260k-casp-quip-table.sh [stories] [llava]        # default: stories
#   SEEDS="0" SAMPLES=128 SEQ_LEN=512 src/scripts/stories260k-casp-quip-table.sh
#
# llava: the same comparison on llava-stories (whose language model is stories260K), calibrated on
# LLAVA_SAMPLES (64) conversations of data/calib with their images, evaluated on the 300 dev
# captions (greedy captions stopped at '.', exact match; caption ppl; KL to float32), seeds SEEDS.
#
# Calibration: SAMPLES random windows x SEQ_LEN tokens of eval.txt (the model has no other text),
# one run per seed in SEEDS. CASP: low-rank q/k at rho 0.25 with 3-bit factors, the savings
# allocated over single linears ({2,3} bits, measured); with --backend quip the budget is
# 2 bits x weights (QuIP# alone stores 2.065), with --backend gptq it is plain GPTQ 2-bit's 2.264.
# Every java process runs under nice -n 19 (a shared machine).
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/common.sh" "$@" # sets here, shared; answers -h
source "$(dirname "${BASH_SOURCE[0]}")/seed-table.sh" # model, text, SEEDS..., casp (private jar, nice 19), seed_table, mean_table
LLAVA_SAMPLES="${LLAVA_SAMPLES:-64}"
sections="${*:-stories}"

llava() {
  local dir="$shared/models/llava-stories"
  local cfgs=("QuIP# 2-bit|--method quip" "CASP-QuIP# measured|--method casp --backend quip" "CASP-GPTQ measured|--method casp --backend gptq")
  echo "llava-stories, dev captions (300); calibration $LLAVA_SAMPLES conversations of data/calib, seeds $SEEDS"
  echo
  echo "| seed | method | effective bits | accuracy | caption ppl | KL to fp32 |"
  echo "|---|---|---|---|---|---|"
  for seed in $SEEDS; do
    for i in "${!cfgs[@]}"; do
      IFS='|' read -r label flags <<<"${cfgs[$i]}"
      out="$work/l$seed-$i"
      # shellcheck disable=SC2086
      c=$(casp compress --model "$dir/model" --calib "$dir/data/calib/calib.json" --bits 2 --samples "$LLAVA_SAMPLES" --seed "$seed" \
          $flags --out "$out" --json)
      e=$(casp eval vqa --model "$out" --data "$dir/data/dev/dev.json" --reference "$dir/model" --stop . --json)
      b=$(echo "$c" | field effective_bits); a=$(echo "$e" | field accuracy); p=$(echo "$e" | field answer_ppl); k=$(echo "$e" | field kl)
      printf "| %s | %s | %.4f | %.4f | %.3f | %.4f |\n" "$seed" "$label" "$b" "$a" "$p" "$k"
      echo "$i|$b|$p|$k" >>"$work/lrows"
      rm -rf "$out"
    done
  done
  echo
  mean_table "$work/lrows" "caption ppl" "${cfgs[@]}"
}

stories() {
  echo "stories260K, ppl on eval.txt at ctx 256; calibration $SAMPLES x $SEQ_LEN tokens of eval.txt, seeds $SEEDS"
  echo
  seed_table "$model" "$text" "QuIP# 2-bit|--method quip" \
    "CASP-QuIP# measured|--method casp --backend quip" \
    "CASP-QuIP# uniform|--method casp --backend quip --allocation uniform" \
    "CASP-QuIP#, factors 2-bit|--method casp --backend quip --factor-bits 2" \
    "CASP-GPTQ measured|--method casp --backend gptq"
}

for s in $sections; do
  case "$s" in
    stories) stories ;;
    llava) llava ;;
    *) echo "unknown section '$s' (stories, llava)" >&2; exit 2 ;;
  esac
  echo
done
