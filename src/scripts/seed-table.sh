# Sourced, after common.sh, by the comparison scripts (stories260k-casp-quip-table.sh,
# stories260k-casp-aqlm-table.sh, casp-backends-table.sh): sets model and text (stories260K and its eval.txt) and the
# defaults of SEEDS (0 1 2), SAMPLES (64) and SEQ_LEN (256); runs a private copy of the jar (editing
# the sources meanwhile cannot change a table) under nice -n 19 as casp(), and provides seed_table
# and mean_table (field and stats come from common.sh).
model="$shared/models/stories260K/model"
text="$shared/models/stories260K/reference/eval.txt"
SEEDS="${SEEDS:-0 1 2}"
SAMPLES="${SAMPLES:-64}"
SEQ_LEN="${SEQ_LEN:-256}"
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
nice -n 19 "$here/casp" --version >/dev/null
cp "$here/target/casp.jar" "$work/casp.jar"
casp() { nice -n 19 java --add-modules jdk.incubator.vector -XX:MaxRAMPercentage=75 -XX:+UseG1GC -jar "$work/casp.jar" "$@" 2> >(grep -v "incubator modules" >&2); }
export CASP_QUIET=1

# seed_table MODEL TEXT "LABEL|FLAGS"...: compresses MODEL at --bits 2 with each config's flags for
# every seed in SEEDS (calibration SAMPLES x SEQ_LEN tokens of TEXT), evaluates ppl at ctx 256 with
# the KL to MODEL, and prints a row per seed and config, then mean ± sd per config (Markdown).
seed_table() {
  local model="$1" text="$2"; shift 2
  local configs=("$@") rows="$work/rows.$RANDOM" seed i label flags out c e b p k s
  echo "| seed | method | effective bits | ppl | KL to fp32 | compress s |"
  echo "|---|---|---|---|---|---|"
  for seed in $SEEDS; do
    for i in "${!configs[@]}"; do
      IFS='|' read -r label flags <<<"${configs[$i]}"
      out="$work/s$seed-$i"
      # shellcheck disable=SC2086
      c=$(casp compress --model "$model" --calib "$text" --bits 2 --samples "$SAMPLES" --seq-len "$SEQ_LEN" --seed "$seed" \
          $flags --out "$out" --json)
      e=$(casp eval ppl --model "$out" --text "$text" --ctx 256 --reference "$model" --json)
      b=$(echo "$c" | field effective_bits); p=$(echo "$e" | field ppl); k=$(echo "$e" | field kl); s=$(echo "$c" | field seconds)
      printf "| %s | %s | %.4f | %.3f | %.4f | %.1f |\n" "$seed" "$label" "$b" "$p" "$k" "$s"
      echo "$i|$b|$p|$k" >>"$rows"
      rm -rf "$out"
    done
  done
  echo
  mean_table "$rows" ppl "${configs[@]}"
}

# mean_table ROWS METRIC "LABEL|FLAGS"...: from ROWS lines "config index|bits|metric|KL", one row per
# config: mean effective bits, METRIC as mean ± sd over seeds, mean KL (Markdown).
mean_table() {
  local rows="$1" metric="$2"; shift 2
  local configs=("$@") i label b p k
  echo "| method | effective bits | $metric (mean ± sd over seeds) | KL to fp32 |"
  echo "|---|---|---|---|"
  for i in "${!configs[@]}"; do
    IFS='|' read -r label _ <<<"${configs[$i]}"
    b=$(grep "^$i|" "$rows" | cut -d'|' -f2 | stats)
    p=$(grep "^$i|" "$rows" | cut -d'|' -f3 | stats)
    k=$(grep "^$i|" "$rows" | cut -d'|' -f4 | stats)
    echo "| $label | ${b% ±*} | $p | ${k% ±*} |"
  done
}
