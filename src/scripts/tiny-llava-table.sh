#!/usr/bin/env bash
# tiny-llava compressed with RTN and GPTQ at 4, 3 and 2 bits, calibrated on its calib set (LLaVA
# conversations with images); dev-set exact-match accuracy, answer perplexity and KL to the
# uncompressed model over the answer tokens. Prints a Markdown table.
#
#   src/scripts/tiny-llava-table.sh          (SAMPLES, LIMIT (dev samples, default all 500), EXTRA override)
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/common.sh" "$@" # sets here, shared; answers -h
model="$shared/models/tiny-llava/model"
calib="$shared/models/tiny-llava/data/calib/calib.json"
dev="$shared/models/tiny-llava/data/dev/dev.json"
SAMPLES="${SAMPLES:-128}"
LIMIT="${LIMIT:-}"
EXTRA="${EXTRA:-}"
casp="${CASP:-$here/casp}"  # CASP=... runs another launcher
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
export CASP_QUIET=1
limit=()
[ -n "$LIMIT" ] && limit=(--limit "$LIMIT")

echo "tiny-llava dev set${LIMIT:+ (first $LIMIT)}; calibration: $SAMPLES calib.json conversations with images, seed 0 ${EXTRA:+($EXTRA)}"
echo
echo "| model | bits/weight (incl. scales, zeros) | accuracy | answer ppl | KL to fp32 |"
echo "|---|---|---|---|---|"
e=$("$casp" eval vqa --model "$model" --data "$dev" "${limit[@]}" --json)
printf "| fp32 | 32 | %.4f | %.4f | 0 |\n" "$(echo "$e" | field accuracy)" "$(echo "$e" | field answer_ppl)"
for bits in 4 3 2; do
  for method in rtn gptq; do
    out="$work/$method$bits"
    c=$("$casp" compress --model "$model" --calib "$calib" --method "$method" --bits "$bits" --samples "$SAMPLES" \
        --seed 0 $EXTRA --out "$out" --json)
    e=$("$casp" eval vqa --model "$out" --data "$dev" "${limit[@]}" --reference "$model" --json)
    printf "| %s %d-bit | %.3f | %.4f | %.4f | %.5f |\n" "$method" "$bits" "$(echo "$c" | field effective_bits)" \
      "$(echo "$e" | field accuracy)" "$(echo "$e" | field answer_ppl)" "$(echo "$e" | field kl)"
  done
done
