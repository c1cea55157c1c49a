#!/usr/bin/env bash
# Perplexity of stories260K (ctx 256 on its reference eval.txt) compressed with AQLM in several
# codebook shapes, with the KL divergence to the float32 model, effective bits (codes, fp16
# codebooks and fp16 scales all counted) and compress time; prints a Markdown table. Same
# calibration as src/scripts/stories260k-ppl-table.sh (128 windows x 512 tokens of eval.txt, seed 0),
# so its GPTQ rows compare directly.
#
#   src/scripts/stories260k-aqlm-table.sh
#   CONFIGS="2x8:2:8" src/scripts/stories260k-aqlm-table.sh     # NAME:BITS:CODEBOOK_BITS[:extra flags]
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/common.sh" "$@" # sets here, shared; answers -h
model="$shared/models/stories260K/model"
text="$shared/models/stories260K/reference/eval.txt"
SAMPLES="${SAMPLES:-128}"
SEQ_LEN="${SEQ_LEN:-512}"
CONFIGS="${CONFIGS:-2x8:2:8 2x8-per-codebook:2:8:--joint-limit=2048 2x8-beam1:2:8:--beam=1 4x4:2:4 8x2:2:2 2x4:1:4}"
casp="${CASP:-$here/casp}"
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
export CASP_QUIET=1

echo "stories260K, eval.txt, ctx 256; calibration: $SAMPLES windows x $SEQ_LEN tokens of eval.txt, seed 0"
echo
echo "| AQLM | nominal bits | effective bits (codes + codebooks + scales) | ppl | KL to fp32 | compress s |"
echo "|---|---|---|---|---|---|"
for cfg in $CONFIGS; do
  IFS=: read -r name bits cbits extra <<< "$cfg"
  out="$work/$name"
  c=$("$casp" compress --model "$model" --calib "$text" --method aqlm --bits "$bits" --codebook-bits "$cbits" ${extra:+$extra} \
      --samples "$SAMPLES" --seq-len "$SEQ_LEN" --seed 0 --out "$out" --json)
  e=$("$casp" eval ppl --model "$out" --text "$text" --ctx 256 --reference "$model" --json)
  printf "| %s | %d | %.3f | %.4f | %.5f | %.1f |\n" "$name" "$bits" "$(echo "$c" | field effective_bits)" \
    "$(echo "$e" | field ppl)" "$(echo "$e" | field kl)" "$(echo "$c" | field seconds)"
done
