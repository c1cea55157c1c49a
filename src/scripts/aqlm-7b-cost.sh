#!/usr/bin/env bash
# What AQLM 2x8 costs on a 7B model, run by hand (not in CI): times casp's AQLM quantizer on row
# slices of 7B-shaped linears (random weights, a Hessian of random activations), fits seconds =
# a + b x rows per input width, and projects one 7B block (q, k, v, o: 4096 x 4096; gate, up:
# 11008 x 4096; down: 4096 x 11008) and 32 blocks; CASP's measurement adds AQLM at 2 and 3 bits
# on five linears per layer before that.
#
#   src/scripts/aqlm-7b-cost.sh [WORK_DIR]      (ROWS="32 64" slice sizes; TOKENS=2048 activations)
#
# Every step of AQLM but the codebook solve (one Cholesky of 4096 unknowns per round, independent
# of the rows) grows linearly with the rows (ALGORITHMS.md 8, Aqlm's cost note), hence the fit.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/common.sh" "$@" # sets here, shared; answers -h
work="${1:-$(mktemp -d)}"
ROWS="${ROWS:-32 64}"
TOKENS="${TOKENS:-2048}"
lock="${CASP_LOCK:-/tmp/casp-timing.lock}" # CASP_LOCK=none: the caller holds the lock already
locked() { if [ "$lock" = none ]; then "$@"; else flock "$lock" "$@"; fi; }
mkdir -p "$work"
"$here/casp" --version >/dev/null
cp "$here/target/casp.jar" "$work/aqlm-cost.jar"
results="$work/aqlm-slices.txt"
: > "$results"
echo "load before: $(uptime)"
for cols in 4096 11008; do
  for rows in $ROWS; do
    cat > "$work/aqlm.jsh" <<JSH
import casp.compress.*;
var rnd = new java.util.SplittableRandom(7);
int rows = $rows, cols = $cols, tokens = $TOKENS;
float[] x = new float[tokens * cols];
for (int i = 0; i < x.length; i++) x[i] = (float) rnd.nextGaussian();
var acc = new HessianAccumulator(cols);
acc.add(x, 0, tokens);
double[] h = acc.finish();
float[] w = new float[rows * cols];
for (int i = 0; i < w.length; i++) w[i] = (float) (0.02 * rnd.nextGaussian());
var q = new Aqlm(Aqlm.Options.defaults(2));
long t0 = System.nanoTime();
var r = q.quantize(w, rows, cols, h);
System.out.println("slice " + rows + " " + cols + " " + (System.nanoTime() - t0) / 1e9);
/exit
JSH
    locked jshell -R--add-modules -Rjdk.incubator.vector -R-Xmx6g --add-modules jdk.incubator.vector \
      --class-path "$work/aqlm-cost.jar" "$work/aqlm.jsh" 2>/dev/null | grep '^slice' | tee -a "$results"
  done
done
echo "load after: $(uptime)"
# Least-squares line per width; then the 7B shapes.
awk '
  { n[$3]++; sx[$3] += $2; sy[$3] += $4; sxx[$3] += $2 * $2; sxy[$3] += $2 * $4 }
  END {
    for (c in n) {
      b[c] = (n[c] * sxy[c] - sx[c] * sy[c]) / (n[c] * sxx[c] - sx[c] * sx[c]); a[c] = (sy[c] - b[c] * sx[c]) / n[c]
      printf "cols %d: seconds = %.1f + %.4f x rows\n", c, a[c], b[c]
    }
    q = a[4096] + b[4096] * 4096; gu = a[4096] + b[4096] * 11008; d = a[11008] + b[11008] * 4096
    block = 4 * q + 2 * gu + d
    casp = 2 * q + 2 * gu + d # CASP: q and k become low-rank factors (small), the other five are AQLM
    printf "one linear: 4096x4096 %.0f s, 11008x4096 %.0f s, 4096x11008 %.0f s\n", q, gu, d
    printf "AQLM alone, one 7B block (7 linears): %.2f h; 32 blocks: %.1f h = %.1f days\n", block / 3600, 32 * block / 3600, 32 * block / 86400
    printf "CASP-AQLM: %.2f h per block + measurement (AQLM at 2 and 3 bits on v, o, gate, up, down) %.2f h per layer; 32 layers: %.1f days\n", casp / 3600, 2 * casp / 3600, 32 * 3 * casp / 86400
  }' "$results"
