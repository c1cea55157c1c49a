#!/usr/bin/env bash
# Checks of the JMH gate itself, on the quick suite, in up to three steps (each optional):
#   RECORD=K   (default 0) record this machine class's quick baseline from K runs
#              (casp bench regress --quick --write-baseline --runs K; BASELINE names another file);
#   SLOWDOWN=1 (default 1) one run with a deliberate slowdown (-Dcasp.matvec.slots=true: the
#              quantized mat-vec takes the scalar slot-layout loop), which must be flagged for
#              exactly the benchmarks that run that mat-vec (AFFECTED, a regex);
#   RUNS=N     (default 10) N runs of the unchanged code, numbered from FIRST (default 1), so that
#              the ten can be made in several invocations (each under one hold of a timing lock).
# Then it summarises every unchanged run in OUT (default target/jmh-checks): how many would have
# failed the gate, each run's flagged rows and its closest call (the largest ratio low end / limit),
# and the spread of each benchmark over the runs; with FACTORS (e.g. "0 1 2"), the same runs and the
# slowdown run compared again at each of those band factors (casp bench regress --band-factor). DEADLINE (seconds since the epoch, optional)
# stops starting new runs after that time. Tables, logs and the load before and after each run go
# to OUT. Runs CASP_JAR (default target/casp.jar) on BENCH_JAR (default target/benchmarks.jar);
# src/scripts/bench-regress.sh builds them.
set -euo pipefail
source "$(dirname "$0")/common.sh" "$@"
cd "$here"
record="${RECORD:-0}"
slowdown="${SLOWDOWN:-1}"
runs="${RUNS:-10}"
first="${FIRST:-1}"
out="${OUT:-target/jmh-checks}"
deadline="${DEADLINE:-}"
affected="${AFFECTED:-^(DequantMatvecBenchmark|LinearBenchmark\.forward kind=gptq|DecodeContextBenchmark)}"
casp_jar="${CASP_JAR:-target/casp.jar}"
bench_jar="${BENCH_JAR:-target/benchmarks.jar}"
baseline=()
[ -n "${BASELINE:-}" ] && baseline=(--baseline "$BASELINE")
mkdir -p "$out"
casp() { java --add-modules jdk.incubator.vector -jar "$casp_jar" "$@"; }
load() { echo "$1: $(date -u +%T) $(uptime)" | tee -a "$out/load.txt"; }
past_deadline() { [ -n "$deadline" ] && [ "$(date +%s)" -ge "$deadline" ]; }
flagged() { grep -E ' (slower|allocates)$' "$1" || true; }

if [ "$record" -gt 0 ]; then
  load "record $record runs"
  casp bench regress --quick --jar "$bench_jar" --out "$out/record" --write-baseline --runs "$record" "${baseline[@]}" \
    | tee "$out/record.txt"
  load "record done"
fi

# regress NAME [flags]: one quick run compared with the baseline; returns casp's exit code.
regress() {
  local name="$1"; shift
  load "$name"
  set +e
  casp bench regress --quick --jar "$bench_jar" --out "$out/$name" "${baseline[@]}" "$@" > "$out/$name.txt" 2>&1
  local rc=$?
  set -e
  load "$name done"
  [ "$rc" = 2 ] && { cat "$out/$name.txt"; exit 2; }
  return "$rc"
}

if [ "$slowdown" = 1 ] && ! past_deadline; then
  rc=0
  regress slowdown --jvm-arg -Dcasp.matvec.slots=true || rc=$?
  {
    echo "slowdown run: exit $rc"
    flagged "$out/slowdown.txt"
    # the timed benchmarks of the table (not the probe), flagged or not, against the affected ones
    rows=$(grep -E '^[A-Za-z]+Benchmark\.' "$out/slowdown.txt" | grep -v '^MachineProbeBenchmark' || true)
    missed=$(echo "$rows" | grep -E "$affected" | grep -vE ' slower$' || true)
    extra=$(echo "$rows" | grep -vE "$affected" | grep -E ' (slower|allocates)$' || true)
    echo "affected benchmarks: $(echo "$rows" | grep -cE "$affected"), flagged slower: $(echo "$rows" | grep -E "$affected" | grep -cE ' slower$');" \
      "unaffected flagged: $(echo -n "$extra" | grep -c . || true)"
    if [ -n "$missed" ]; then echo "MISSED: $missed"; fi
    if [ -n "$extra" ]; then echo "FLAGGED BUT UNAFFECTED: $extra"; fi
  } | tee "$out/slowdown-summary.txt"
fi

for i in $(seq "$first" $((first + runs - 1))); do
  if past_deadline; then echo "deadline reached before run $i"; break; fi
  regress "run$i" || true
done

# Summary of every unchanged run in OUT.
files=()
alarms=0
summary="$out/summary.txt"
: > "$summary"
for t in $(ls "$out"/run*.txt 2>/dev/null | sort -V); do
  name=$(basename "$t" .txt)
  [ -f "$out/$name/quick-results.json" ] || continue
  files+=("$out/$name/quick-results.json")
  n=$(flagged "$t" | grep -c . || true)
  [ "$n" -gt 0 ] && alarms=$((alarms + 1))
  # closest call: the largest (ratio range low end) / limit over the run's benchmarks
  closest=$(awk 'match($0, /\[[-0-9.]+, [^]]+\] +[0-9.]+/) {
      split(substr($0, RSTART + 1, RLENGTH - 1), f, /[], ]+/); r = f[1] / f[3];
      if (r > best) { best = r; key = substr($0, 1, index($0, "  ") - 1) } }
      END { printf "%.3f (%s)", best, key }' "$t")
  echo "$name: $n flagged; closest call low/limit $closest" | tee -a "$summary"
  flagged "$t" | sed "s/^/  /" | tee -a "$summary"
done
echo "false alarms: $alarms of ${#files[@]} unchanged runs" | tee -a "$summary"
if [ "${#files[@]}" -gt 0 ]; then casp bench regress --quick "${baseline[@]}" --spread "${files[@]}" | tee -a "$summary"; fi
if [ -f "$out/slowdown-summary.txt" ]; then cat "$out/slowdown-summary.txt" >> "$summary"; fi
for f in ${FACTORS:-}; do
  n=0
  for j in "${files[@]}"; do
    casp bench regress --quick "${baseline[@]}" --results "$j" --band-factor "$f" > "$out/factor.txt" 2>&1 || n=$((n + 1))
  done
  s=-
  if [ -f "$out/slowdown/quick-results.json" ]; then
    casp bench regress --quick "${baseline[@]}" --results "$out/slowdown/quick-results.json" --band-factor "$f" > "$out/factor.txt" 2>&1 || true
    rows=$(grep -E '^[A-Za-z]+Benchmark\.' "$out/factor.txt" | grep -v '^MachineProbeBenchmark' || true)
    s="$(echo "$rows" | grep -E "$affected" | grep -cE ' slower$' || true) of $(echo "$rows" | grep -cE "$affected") affected flagged, $(echo "$rows" | grep -vE "$affected" | grep -cE ' (slower|allocates)$' || true) others"
  fi
  echo "band factor $f: false alarms in $n of ${#files[@]} unchanged runs; slowdown: $s" | tee -a "$summary"
done
rm -f "$out/factor.txt"
exit 0
