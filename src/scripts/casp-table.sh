#!/usr/bin/env bash
# The CASP result tables (Markdown), each from the commands it shows:
#
#   src/scripts/casp-table.sh [stories] [factors] [lowrank] [llava] [tiny] [sparsity]    # default: all
#   SEEDS="0 1 2" SAMPLES=64 SEQ_LEN=256 LLAVA_SAMPLES=64 src/scripts/casp-table.sh stories
#
#   stories   stories260K (ctx 256 on its reference eval.txt, calibrated on random windows of the
#             same file): plain GPTQ 2-bit vs CASP-GPTQ 2-bit at an equal budget, every allocation
#             mode, per calibration seed, then mean and spread
#   factors   how the low-rank factors are quantized: rotation, a wider A, a refit of A (stories260K)
#   lowrank   the low-rank Q/K step alone (float32 factors, everything else float32): perplexity at
#             rank ratios 0.25 and 0.5
#   llava     llava-stories (calibrated on its calib set, evaluated on dev): caption perplexity and KL
#             to the float32 model, plain GPTQ vs CASP with rank rules and ratios, over the seeds
#   tiny      tiny-llava: the same comparison (plumbing, not quality: its LM shrugs off 2 bits)
#   sparsity  `casp sparsity` on the LLaVA models: sparsity, visual mass, MSE(S - S') by visual share
#
# Effective bits count everything stored for the decoder's linear layers: codes, fp16 scales,
# zeros, and the low-rank factors at their own width.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/common.sh" "$@" # sets here (or $CASP_REPO), shared; answers -h
SEEDS="${SEEDS:-0 1 2}"
SAMPLES="${SAMPLES:-64}"
SEQ_LEN="${SEQ_LEN:-256}"
LLAVA_SAMPLES="${LLAVA_SAMPLES:-64}"
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
# Build once, then run a private copy of the jar: editing the sources meanwhile cannot change the tables.
"$here/casp" --version >/dev/null
cp "$here/target/casp.jar" "$work/casp.jar"
casp() { java --add-modules jdk.incubator.vector -XX:MaxRAMPercentage=75 -XX:+UseG1GC -jar "$work/casp.jar" "$@" 2> >(grep -v "incubator modules" >&2); }
casp="casp"
export CASP_QUIET=1
sections="${*:-stories factors lowrank llava tiny sparsity}"

stories() {
  local model="$shared/models/stories260K/model" text="$shared/models/stories260K/reference/eval.txt"
  echo "## stories260K: CASP-GPTQ 2-bit vs plain GPTQ 2-bit at an equal budget"
  echo
  echo "ppl on eval.txt, ctx 256; calibration: $SAMPLES windows x $SEQ_LEN tokens of eval.txt per seed;"
  echo "CASP: low-rank q/k at rho 0.25 (3-bit factors), the savings allocated over single linears ({2,3} bits)."
  echo
  local fp; fp=$("$casp" eval ppl --model "$model" --text "$text" --ctx 256 --json | field ppl)
  printf "float32: ppl %.4f\n\n" "$fp"
  echo "| seed | method | allocation | effective bits | ppl | KL to fp32 |"
  echo "|---|---|---|---|---|---|"
  local configs=("plain|gptq|" "casp|uniform|--allocation uniform" "casp|paper|--allocation paper"
    "casp|closed-form|--allocation closed-form" "casp|measured|--allocation measured"
    "casp|measured, layer unit|--allocation measured --allocation-unit layer")
  for seed in $SEEDS; do
    for cfg in "${configs[@]}"; do
      IFS='|' read -r kind label flags <<<"$cfg"
      local out="$work/s$seed-$kind-${label//[ ,]/_}" c e
      if [ "$kind" = plain ]; then
        c=$("$casp" compress --model "$model" --calib "$text" --method gptq --bits 2 --samples "$SAMPLES" --seq-len "$SEQ_LEN" \
            --seed "$seed" --out "$out" --json)
      else
        # shellcheck disable=SC2086
        c=$("$casp" compress --model "$model" --calib "$text" --method casp --backend gptq --bits 2 --samples "$SAMPLES" \
            --seq-len "$SEQ_LEN" --seed "$seed" $flags --out "$out" --json)
      fi
      e=$("$casp" eval ppl --model "$out" --text "$text" --ctx 256 --reference "$model" --json)
      local b p k
      b=$(echo "$c" | field effective_bits); p=$(echo "$e" | field ppl); k=$(echo "$e" | field kl)
      printf "| %s | %s | %s | %.4f | %.3f | %.4f |\n" "$seed" "$kind" "${label:-"-"}" "$b" "$p" "$k"
      echo "$kind|${label:-"-"}|$b|$p|$k" >>"$work/stories.tsv"
      rm -rf "$out"
    done
  done
  echo
  echo "Mean ± sd over seeds ($SEEDS):"
  echo
  echo "| method | allocation | effective bits | ppl | KL to fp32 |"
  echo "|---|---|---|---|---|"
  for cfg in "${configs[@]}"; do
    IFS='|' read -r kind label flags <<<"$cfg"
    local rows; rows=$(grep "^$kind|${label:-"-"}|" "$work/stories.tsv")
    printf "| %s | %s | %s | %s | %s |\n" "$kind" "${label:-"-"}" "$(echo "$rows" | cut -d'|' -f3 | stats)" \
      "$(echo "$rows" | cut -d'|' -f4 | stats)" "$(echo "$rows" | cut -d'|' -f5 | stats)"
  done
  echo
}

factors() {
  local model="$shared/models/stories260K/model" text="$shared/models/stories260K/reference/eval.txt"
  echo "## Quantizing the low-rank factors (stories260K, CASP-GPTQ 2-bit, measured allocation over linears)"
  echo
  echo "Factor A's Hessian B H B^T is diagonal after whitening, so GPTQ cannot compensate its rounding errors:"
  echo "a random rotation of the rank dimension, a wider A, or a least-squares refit of A to the quantized B."
  echo "(All at the same total budget: a wider A leaves fewer bits for the other linears.)"
  echo
  echo "| factors | effective bits | ppl (mean ± sd) | KL to fp32 (mean ± sd) |"
  echo "|---|---|---|---|"
  local configs=("B 3, A 3 (default)|" "B 3, A 3, rotated|--rotate" "B 3, A 4|--a-bits 4" "B 3, A 3, A refitted|--refit-a"
    "B 3, A 4, rotated|--a-bits 4 --rotate")
  for cfg in "${configs[@]}"; do
    IFS='|' read -r label flags <<<"$cfg"
    : >"$work/factors.tsv"
    for seed in $SEEDS; do
      local out="$work/f-$seed" c e
      # shellcheck disable=SC2086
      c=$("$casp" compress --model "$model" --calib "$text" --method casp --bits 2 --samples "$SAMPLES" --seq-len "$SEQ_LEN" \
          --seed "$seed" $flags --out "$out" --json)
      e=$("$casp" eval ppl --model "$out" --text "$text" --ctx 256 --reference "$model" --json)
      echo "$(echo "$c" | field effective_bits)|$(echo "$e" | field ppl)|$(echo "$e" | field kl)" >>"$work/factors.tsv"
      rm -rf "$out"
    done
    printf "| %s | %s | %s | %s |\n" "$label" "$(cut -d'|' -f1 "$work/factors.tsv" | stats)" "$(cut -d'|' -f2 "$work/factors.tsv" | stats)" \
      "$(cut -d'|' -f3 "$work/factors.tsv" | stats)"
  done
  echo
}

lowrank() {
  local model="$shared/models/stories260K/model" text="$shared/models/stories260K/reference/eval.txt"
  echo "## The low-rank Q/K step alone (stories260K, float32 factors, all other weights float32)"
  echo
  echo "| rank ratio | q/k ranks | seed | ppl (ctx 256) | KL to fp32 | mean relative truncation loss q / k |"
  echo "|---|---|---|---|---|---|"
  for rho in 0.25 0.5; do
    for seed in $SEEDS; do
      local out="$work/lr-$rho-$seed" e
      "$casp" compress --model "$model" --calib "$text" --method casp --bits 2 --lowrank-only --factor-bits 0 --rank-ratio "$rho" \
        --samples "$SAMPLES" --seq-len "$SEQ_LEN" --seed "$seed" --out "$out" --json >/dev/null
      e=$("$casp" eval ppl --model "$out" --text "$text" --ctx 256 --reference "$model" --json)
      local ranks losses
      ranks=$(tr -d ' \n' <"$out/casp-report.json" | sed -n 's/.*"low_rank":\[{"layer":0,"q_rank":\([0-9]*\),"k_rank":\([0-9]*\).*/\1 \/ \2/p')
      losses=$(tr -d ' \n' <"$out/casp-report.json" | grep -o '"[qk]_truncation_loss":[0-9.eE-]*' \
        | awk -F: '{if ($1 ~ /q_/) {q+=$2; nq++} else {k+=$2; nk++}} END {printf "%.4f / %.4f", q/nq, k/nk}')
      printf "| %s | %s | %s | %.3f | %.4f | %s |\n" "$rho" "$ranks" "$seed" "$(echo "$e" | field ppl)" "$(echo "$e" | field kl)" "$losses"
      rm -rf "$out"
    done
  done
  echo
}

# vqa_run MODEL_DIR DATA_DIR OUT [compress flags...]: compress, evaluate on dev with KL to the float32
# model; prints "bits|accuracy|answer ppl|kl"
vqa_run() {
  local model="$1" data="$2" out="$3"; shift 3
  local c e
  c=$("$casp" compress --model "$model" --calib "$data/calib/calib.json" --samples "$LLAVA_SAMPLES" --out "$out" --json "$@")
  e=$("$casp" eval vqa --model "$out" --data "$data/dev/dev.json" --reference "$model" --stop . --json)
  echo "$(echo "$c" | field effective_bits)|$(echo "$e" | field accuracy)|$(echo "$e" | field answer_ppl)|$(echo "$e" | field kl)"
  rm -rf "$out"
}

# vqa_table NAME CONFIGS...: one row per seed and config, then mean ± sd per config
vqa_table() {
  local name="$1"; shift
  local dir="$shared/models/$name" tsv="$work/$name.tsv"
  : >"$tsv"
  local fp; fp=$("$casp" eval vqa --model "$dir/model" --data "$dir/data/dev/dev.json" --stop . --json)
  printf "float32: accuracy %.4f, caption/answer ppl %.4f\n\n" "$(echo "$fp" | field accuracy)" "$(echo "$fp" | field answer_ppl)"
  echo "| seed | config | effective bits | accuracy | answer ppl | KL to fp32 |"
  echo "|---|---|---|---|---|---|"
  for seed in $SEEDS; do
    for cfg in "$@"; do
      IFS='|' read -r label flags <<<"$cfg"
      local r
      # shellcheck disable=SC2086
      r=$(vqa_run "$dir/model" "$dir/data" "$work/$name-$seed" --seed "$seed" $flags)
      IFS='|' read -r b a p k <<<"$r"
      case "$flags" in *--lowrank-only*) b="-" ;; *) b=$(printf "%.4f" "$b") ;; esac # the rest stays float32
      printf "| %s | %s | %s | %.4f | %.3f | %.4f |\n" "$seed" "$label" "$b" "$a" "$p" "$k"
      echo "$label|$r" >>"$tsv"
    done
  done
  echo
  echo "Mean ± sd over seeds ($SEEDS):"
  echo
  echo "| config | effective bits | accuracy | answer ppl | KL to fp32 |"
  echo "|---|---|---|---|---|"
  for cfg in "$@"; do
    IFS='|' read -r label flags <<<"$cfg"
    local rows; rows=$(grep -F "$label|" "$tsv" | awk -F'|' -v l="$label" '$1 == l')
    local bits; case "$flags" in *--lowrank-only*) bits="-" ;; *) bits=$(echo "$rows" | cut -d'|' -f2 | stats) ;; esac
    printf "| %s | %s | %s | %s | %s |\n" "$label" "$bits" "$(echo "$rows" | cut -d'|' -f3 | stats)" \
      "$(echo "$rows" | cut -d'|' -f4 | stats)" "$(echo "$rows" | cut -d'|' -f5 | stats)"
  done
  echo
}

llava() {
  echo "## llava-stories: CASP vs plain GPTQ at 2 bits (equal budget), dev captions"
  echo
  echo "Calibration: $LLAVA_SAMPLES samples of data/calib (image + conversation, text cut to 256 tokens) per seed; dev: all 300"
  echo "samples, greedy captions stopped at the first '.', answer ppl = perplexity of the reference caption tokens."
  echo "CASP: --method casp --backend gptq --bits 2 with the allocation measured over single linears; 'low-rank only' rows"
  echo "replace q/k by float32 factors and keep everything else float32 (the cost of the low-rank step by itself)."
  echo
  vqa_table llava-stories \
    "plain gptq 2-bit|--method gptq --bits 2" \
    "casp rho 0.25 (ratio rule)|--method casp --bits 2 --rank-ratio 0.25" \
    "casp rho 0.5 (ratio rule)|--method casp --bits 2 --rank-ratio 0.5" \
    "casp budget rule (rho 0.25 total)|--method casp --bits 2 --rank-rule budget --rank-ratio 0.25" \
    "casp threshold rule 0.01|--method casp --bits 2 --rank-rule threshold --rank-threshold 0.01" \
    "low-rank only, rho 0.25|--method casp --bits 2 --lowrank-only --factor-bits 0 --rank-ratio 0.25" \
    "low-rank only, rho 0.5|--method casp --bits 2 --lowrank-only --factor-bits 0 --rank-ratio 0.5" \
    "low-rank only, budget rule 0.25|--method casp --bits 2 --lowrank-only --factor-bits 0 --rank-rule budget --rank-ratio 0.25"
}

tiny() {
  echo "## tiny-llava: CASP vs plain GPTQ at 2 bits (plumbing, not quality: its small LM is nearly lossless at 2 bits)"
  echo
  vqa_table tiny-llava \
    "plain gptq 2-bit|--method gptq --bits 2" \
    "casp rho 0.25|--method casp --bits 2 --rank-ratio 0.25"
}

sparsity() {
  for m in llava-stories tiny-llava; do
    local dir="$shared/models/$m"
    echo "## casp sparsity: $m (dev inputs; low-rank factors from the calib set)"
    echo
    echo "Fixed length 256 tokens with 0-3 images (the visual share varies, the sequence length does not):"
    echo
    echo '```'
    "$casp" sparsity --model "$dir/model" --data "$dir/data/dev/dev.json" --calib "$dir/data/calib/calib.json" \
      --samples 16 --rank-ratio 0.25,0.5 --fixed-length 256 --images-per-input 0,1,2,3 \
      | sed -n '/By share/,$p'
    echo '```'
    echo
    local last; last=$( [ $m = tiny-llava ] && echo 160 || echo 256 )
    echo "One image, 8 / 32 / 96 / $last text tokens after it (the share and the length vary together):"
    echo
    echo '```'
    "$casp" sparsity --model "$dir/model" --data "$dir/data/dev/dev.json" --calib "$dir/data/calib/calib.json" \
      --samples 16 --rank-ratio 0.25,0.5 --text-tokens 8,32,96,"$last" | sed -n '/By share/,$p'
    echo '```'
    echo
  done
}

for s in $sections; do
  case "$s" in
    stories) stories ;;
    factors) factors ;;
    lowrank) lowrank ;;
    sparsity) sparsity ;;
    llava) llava ;;
    tiny) tiny ;;
    *) echo "unknown section '$s' (stories, factors, lowrank, llava, tiny, sparsity)" >&2; exit 2 ;;
  esac
done
