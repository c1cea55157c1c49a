#!/usr/bin/env bash
# The JMH performance gate. Builds target/casp.jar and target/benchmarks.jar, then runs
# `casp bench regress` with the given flags:
#   src/scripts/bench-regress.sh --quick                  quick pass (a few minutes), compared with
#                                                         jmh/baselines/<cpu>-<width>bit-quick.json
#   src/scripts/bench-regress.sh                          the full suite (the real gate)
#   src/scripts/bench-regress.sh --quick --write-baseline refresh this machine class's baseline
#   src/scripts/bench-regress.sh --quick --jvm-arg -Dcasp.matvec.slots=true   a known slowdown
# Exit 0: no regression; 1: a benchmark slower than --threshold (10%) beyond its error bars;
# 2: bad input. Run nothing else heavy meanwhile: other processes slow the benchmarks.
set -euo pipefail
source "$(dirname "$0")/common.sh" "$@"
cd "$here"
./mvnw -q -B -DskipTests package
./mvnw -q -B -Pjmh -DskipTests package
exec java --add-modules jdk.incubator.vector -jar target/casp.jar bench regress "$@"
