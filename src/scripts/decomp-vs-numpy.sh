#!/usr/bin/env bash
# Randomized SVD and dequantizing mat-vec against numpy/OpenBLAS, measured in the same run.
# Usage: src/scripts/decomp-vs-numpy.sh [repeats]   (from the repository root; needs ../shared)
# Each repeat runs the Java benchmark and its numpy reference back to back, so both see the same
# machine state; compare the medians over repeats. The machine should be otherwise idle.
set -euo pipefail
cd "$(dirname "$0")/../.."
ref="${NUMPY_REF:-../shared/bench/numpy_ref.py}"
if [ "${1:-}" = -h ] || [ "${1:-}" = --help ]; then
  sed -n '2,/^set -euo pipefail/{/^#/s/^# \{0,1\}//p}' "${BASH_SOURCE[0]}"
  echo "(repository: $(pwd); numpy reference: $ref)"
  exit 0
fi
repeats="${1:-3}"
./casp --help >/dev/null 2>&1 || true # builds the jar if needed
# Before the kernel branches merge, rsvd/matvec are top-level commands; after, `bench` subcommands.
# (--help cannot tell: picocli answers it even for an unknown command.)
if ./casp bench rsvd --m 2 --n 2 --rank 1 --runs 1 --warmup 0 >/dev/null 2>&1; then cmd=(./casp bench); else cmd=(./casp); fi
for i in $(seq "$repeats"); do
  "${cmd[@]}" rsvd --m 4096 --n 4096 --rank 512 --power-iters 2 --json 2>/dev/null
  python3 "$ref" rsvd 4096 4096 512 2
  "${cmd[@]}" matvec --bits 2 --rows 16384 --cols 16384 --json 2>/dev/null
  python3 "$ref" membw 512
done
