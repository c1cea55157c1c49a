#!/usr/bin/env bash
# Checks of the JMH gate itself, on the quick suite against this machine's committed quick
# baseline: first one run with a deliberate slowdown (-Dcasp.matvec.slots=true: the quantized
# mat-vec takes the scalar slot-layout loop), which must be flagged for exactly the benchmarks that
# run that mat-vec; then RUNS (default 10) back-to-back runs of the unchanged code: how many would
# have failed the gate, and the spread of each benchmark. DEADLINE (seconds since the epoch, optional)
# stops starting new runs after that time. Tables, logs and the load before each run go to OUT
# (default target/jmh-checks). Runs CASP_JAR (default target/casp.jar) on BENCH_JAR (default
# target/benchmarks.jar); src/scripts/bench-regress.sh builds them.
set -euo pipefail
source "$(dirname "$0")/common.sh" "$@"
cd "$here"
runs="${RUNS:-10}"
out="${OUT:-target/jmh-checks}"
deadline="${DEADLINE:-}"
casp_jar="${CASP_JAR:-target/casp.jar}"
bench_jar="${BENCH_JAR:-target/benchmarks.jar}"
mkdir -p "$out"
casp() { java --add-modules jdk.incubator.vector -jar "$casp_jar" "$@"; }
# regress NAME [flags]: one quick run compared with the baseline; prints the flagged rows, returns the exit code.
regress() {
  local name="$1"; shift
  echo "$name: $(date -u +%T) $(uptime)" | tee -a "$out/load.txt"
  set +e
  casp bench regress --quick --jar "$bench_jar" --out "$out/$name" "$@" > "$out/$name.txt" 2>&1
  local rc=$?
  set -e
  echo "$name done: $(date -u +%T) $(uptime)" | tee -a "$out/load.txt"
  [ "$rc" = 2 ] && { cat "$out/$name.txt"; exit 2; }
  grep -E ' (slower|allocates)$' "$out/$name.txt" | sed "s/^/$name: /" || true
  return "$rc"
}
rc=0
regress slowdown --jvm-arg -Dcasp.matvec.slots=true || rc=$?
echo "slowdown run: exit $rc" | tee "$out/summary.txt"
grep -E ' (slower|allocates)$' "$out/slowdown.txt" >> "$out/summary.txt" || true
alarms=0
files=()
for i in $(seq 1 "$runs"); do
  if [ -n "$deadline" ] && [ "$(date +%s)" -ge "$deadline" ]; then echo "deadline reached after $((i - 1)) runs"; break; fi
  regress "run$i" || alarms=$((alarms + 1))
  files+=("$out/run$i/quick-results.json")
done
echo "false alarms: $alarms of ${#files[@]} unchanged runs" | tee -a "$out/summary.txt"
casp bench regress --quick --spread "${files[@]}" | tee -a "$out/summary.txt"
