#!/usr/bin/env bash
# stories260K at a 2-bit target: CASP with the AQLM backend against AQLM alone (Markdown). ppl on
# reference/eval.txt at ctx 256, KL to the float32 model, effective bits per original linear weight
# (everything stored counted: codes, codebooks, per-row scales, factors).
#
#   src/scripts/stories260k-casp-aqlm-table.sh
#   SEEDS="0" SAMPLES=64 SEQ_LEN=256 CODEBOOK_BITS="2 4" src/scripts/stories260k-casp-aqlm-table.sh
#
# First the budget at the target itself (--budget target, the default): for each codebook size the
# cheapest CASP-AQLM plan's bits, from the refusal message (no compression runs). Then, for each
# codebook size in CODEBOOK_BITS, AQLM alone at 2 bits (M = 16 / B codebooks) against CASP-AQLM with
# --budget plain (the bits that AQLM alone stores), low-rank q/k at rho 0.25 with 3-bit factors (per-
# channel GPTQ on this model: AQLM codebooks would cost more), the savings allocated over single linears
# ({2,3} bits, measured). Same calibration as the QuIP# table: SAMPLES random windows x SEQ_LEN tokens of
# eval.txt, one run per seed in SEEDS. AQLM at its defaults (beam 4, 6 rounds). Every java process runs
# under nice -n 19 (a shared machine).
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/common.sh" "$@" # sets here, shared; answers -h
source "$(dirname "${BASH_SOURCE[0]}")/seed-table.sh" # model, text, SEEDS..., casp (private jar, nice 19), seed_table
CODEBOOK_BITS="${CODEBOOK_BITS:-2 4}"

echo "stories260K, CASP-AQLM at --budget target (2 bits x weights): the cheapest plan"
echo
echo "| codebooks (2 / 3 bits) | cheapest plan, bits per weight | exit |"
echo "|---|---|---|"
for b in 2 4 8; do
  set +e
  msg=$(casp compress --model "$model" --calib "$text" --bits 2 --samples 2 --seq-len 64 --method casp --backend aqlm \
      --codebook-bits "$b" --out "$work/t$b" 2>&1 >/dev/null)
  rc=$?
  set -e
  cheapest=$(echo "$msg" | grep -o '= [0-9.]* bits per weight' | head -1 | cut -d' ' -f2)
  printf "| %dx%d / %dx%d | %s | %d |\n" $((16 / b)) "$b" $((24 / b)) "$b" "${cheapest:-?}" "$rc"
  rm -rf "$work/t$b"
done
echo

configs=()
for b in $CODEBOOK_BITS; do
  configs+=("AQLM $((16 / b))x$b|--method aqlm --codebook-bits $b")
  configs+=("CASP-AQLM $((16 / b))x$b, plain budget|--method casp --backend aqlm --codebook-bits $b --budget plain")
done
echo "stories260K, ppl on eval.txt at ctx 256; calibration $SAMPLES x $SEQ_LEN tokens of eval.txt, seeds $SEEDS"
echo
seed_table "$model" "$text" "${configs[@]}"
