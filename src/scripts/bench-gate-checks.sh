#!/usr/bin/env bash
# Checks of the JMH gate itself, on the quick suite against this machine's committed quick
# baseline: RUNS (default 10) back-to-back runs of the unchanged code (how many would have failed
# the gate, and the spread of each benchmark), then one run with a deliberate slowdown
# (-Dcasp.matvec.slots=true: the quantized mat-vec takes the scalar slot-layout loop), which must be
# flagged for exactly the benchmarks that run that mat-vec. Tables and logs go to OUT
# (default target/jmh-checks). Runs CASP_JAR (default target/casp.jar) on BENCH_JAR (default
# target/benchmarks.jar); src/scripts/bench-regress.sh builds them.
set -euo pipefail
source "$(dirname "$0")/common.sh" "$@"
cd "$here"
runs="${RUNS:-10}"
out="${OUT:-target/jmh-checks}"
mkdir -p "$out"
casp_jar="${CASP_JAR:-target/casp.jar}"
bench_jar="${BENCH_JAR:-target/benchmarks.jar}"
casp() { java --add-modules jdk.incubator.vector -jar "$casp_jar" "$@"; }
alarms=0
files=()
for i in $(seq 1 "$runs"); do
  echo "run $i/$runs: $(uptime)" | tee -a "$out/load.txt"
  set +e
  casp bench regress --quick --jar "$bench_jar" --out "$out/run$i" > "$out/run$i.txt" 2>&1
  rc=$?
  set -e
  [ "$rc" = 2 ] && { cat "$out/run$i.txt"; exit 2; }
  [ "$rc" = 1 ] && alarms=$((alarms + 1))
  grep -E ' (slower|allocates)$' "$out/run$i.txt" | sed "s/^/run $i: /" || true
  files+=("$out/run$i/quick-results.json")
done
echo "false alarms: $alarms of $runs runs" | tee "$out/summary.txt"
casp bench regress --quick --spread "${files[@]}" | tee -a "$out/summary.txt"
echo "slowdown run: $(uptime)" | tee -a "$out/load.txt"
set +e
casp bench regress --quick --jar "$bench_jar" --out "$out/slowdown" --jvm-arg -Dcasp.matvec.slots=true > "$out/slowdown.txt" 2>&1
rc=$?
set -e
echo "slowdown run exit $rc; flagged:" | tee -a "$out/summary.txt"
grep -E ' (slower|allocates)$' "$out/slowdown.txt" | tee -a "$out/summary.txt" || true
