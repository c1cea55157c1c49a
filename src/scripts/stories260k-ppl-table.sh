#!/usr/bin/env bash
# Perplexity of stories260K (ctx 256 on its reference eval.txt) in float32 and compressed with RTN
# and GPTQ at 4, 3 and 2 bits, with the KL divergence to the float32 model; prints a Markdown table.
#
#   src/scripts/stories260k-ppl-table.sh            # default settings (below)
#   SAMPLES=64 SEQ_LEN=256 EXTRA="--act-order" src/scripts/stories260k-ppl-table.sh
#
# Calibration is the same eval.txt (random windows, seed 0): the model has no other text. Group
# size is the default: 128 or the largest divisor of the input width below it, i.e. one group per
# row for the width-64 inputs and groups of 86 for the width-172 input of down_proj.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/common.sh" "$@" # sets here, shared; answers -h
model="$shared/models/stories260K/model"
text="$shared/models/stories260K/reference/eval.txt"
SAMPLES="${SAMPLES:-128}"
SEQ_LEN="${SEQ_LEN:-512}"
EXTRA="${EXTRA:-}"
casp="${CASP:-$here/casp}"  # CASP=... runs another launcher
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
export CASP_QUIET=1

echo "stories260K, eval.txt, ctx 256; calibration: $SAMPLES windows x $SEQ_LEN tokens of eval.txt, seed 0 ${EXTRA:+($EXTRA)}"
echo
echo "| model | bits/weight (incl. scales, zeros) | ppl | KL to fp32 | compress s |"
echo "|---|---|---|---|---|"
ppl=$("$casp" eval ppl --model "$model" --text "$text" --ctx 256 --json | field ppl)
printf "| fp32 | 32 | %.4f | 0 | - |\n" "$ppl"
for bits in 4 3 2; do
  for method in rtn gptq; do
    out="$work/$method$bits"
    c=$("$casp" compress --model "$model" --calib "$text" --method "$method" --bits "$bits" \
        --samples "$SAMPLES" --seq-len "$SEQ_LEN" --seed 0 $EXTRA --out "$out" --json)
    e=$("$casp" eval ppl --model "$out" --text "$text" --ctx 256 --reference "$model" --json)
    printf "| %s %d-bit | %.3f | %.4f | %.5f | %.1f |\n" "$method" "$bits" "$(echo "$c" | field effective_bits)" \
      "$(echo "$e" | field ppl)" "$(echo "$e" | field kl)" "$(echo "$c" | field seconds)"
  done
done
