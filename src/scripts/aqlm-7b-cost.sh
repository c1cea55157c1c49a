#!/usr/bin/env bash
# What AQLM costs on a 7B model, run by hand (not in CI): times casp's AQLM quantizer (2x8 and 3x8,
# the defaults at 2 and 3 bits) on row slices of 7B-shaped linears (random weights, a Hessian of
# random activations), fits seconds = a + b x rows per input width and bit width, and projects one
# 7B block (q, k, v, o: 4096 x 4096; gate, up: 11008 x 4096; down: 4096 x 11008), 32 blocks, and
# CASP-AQLM (q and k become low-rank factors; CASP's measurement first runs AQLM at 2 and 3 bits on
# the other five linears of every layer).
#
#   src/scripts/aqlm-7b-cost.sh [WORK_DIR]
#     ROWS="512 1024" slice sizes at 4096 inputs, ROWS_WIDE (default "256 512") at 11008 inputs;
#     BITS="2 3"; TOKENS=2048 activations
#
# Every step of AQLM but the codebook factorization (one Cholesky of M x 2048 unknowns per round,
# independent of the rows) grows linearly with the rows (ALGORITHMS.md 8, Aqlm's cost note), hence
# the fit; slices of hundreds of rows keep the fixed part from swamping the slope, and the codebook
# system reuses a strip of H for the rows that share a code, which pays only with many rows.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/common.sh" "$@" # sets here, shared; answers -h
work="${1:-$(mktemp -d)}"
ROWS="${ROWS:-512 1024}"
ROWS_WIDE="${ROWS_WIDE:-256 512}"
BITS="${BITS:-2 3}"
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
  rows_here="$ROWS"; [ "$cols" = 4096 ] || rows_here="$ROWS_WIDE"
  for bits in $BITS; do
    cat > "$work/aqlm.jsh" <<JSH
import casp.kernel.HessianAccumulator;
import casp.quant.aqlm.Aqlm;
var rnd = new java.util.SplittableRandom(7);
int cols = $cols, tokens = $TOKENS;
float[] x = new float[tokens * cols];
for (int i = 0; i < x.length; i++) x[i] = (float) rnd.nextGaussian();
var acc = new HessianAccumulator(cols);
acc.add(x, 0, tokens);
double[] h = acc.finish();
x = null;
for (int rows : new int[] {$(echo $rows_here | tr ' ' ',')}) {
  float[] w = new float[rows * cols];
  for (int i = 0; i < w.length; i++) w[i] = (float) (0.02 * rnd.nextGaussian());
  long t0 = System.nanoTime();
  var s = new Aqlm(Aqlm.Options.defaults($bits)).quantize(w, rows, cols, h).stats();
  System.out.printf("slice %d %d %d %.2f k-means %.2f search %.2f solve %.2f rounds %s%n", $bits, rows, cols,
      (System.nanoTime() - t0) / 1e9, s.get("kmeans_seconds"), s.get("search_seconds"), s.get("solve_seconds"), s.get("rounds"));
}
/exit
JSH
    locked jshell -R--add-modules -Rjdk.incubator.vector -R-Xmx8g --add-modules jdk.incubator.vector \
      --class-path "$work/aqlm-cost.jar" "$work/aqlm.jsh" 2>&1 | grep --line-buffered -E '^slice|rror|xception' | tee -a "$results"
  done
done
echo "load after: $(uptime)"
# Least-squares line per (bits, width); then the 7B shapes.
awk '
  $1 == "slice" { key = $2 " " $4; n[key]++; sx[key] += $3; sy[key] += $5; sxx[key] += $3 * $3; sxy[key] += $3 * $5 }
  END {
    for (key in n) {
      b[key] = (n[key] * sxy[key] - sx[key] * sy[key]) / (n[key] * sxx[key] - sx[key] * sx[key]); a[key] = (sy[key] - b[key] * sx[key]) / n[key]
      printf "%s-bit, cols %s: seconds = %.1f + %.4f x rows\n", substr(key, 1, 1), substr(key, 3), a[key], b[key]
    }
    for (bits = 2; bits <= 3; bits++) {
      if (!((bits " 4096") in n) || !((bits " 11008") in n)) continue
      q[bits] = a[bits " 4096"] + b[bits " 4096"] * 4096; gu[bits] = a[bits " 4096"] + b[bits " 4096"] * 11008
      d[bits] = a[bits " 11008"] + b[bits " 11008"] * 4096
      five[bits] = 2 * q[bits] + 2 * gu[bits] + d[bits] # v, o, gate, up, down
      printf "%d-bit, one linear: 4096x4096 %.0f s, 11008x4096 %.0f s, 4096x11008 %.0f s\n", bits, q[bits], gu[bits], d[bits]
    }
    if (!(2 in q)) exit
    block = 4 * q[2] + 2 * gu[2] + d[2]
    printf "AQLM 2x8 alone, one 7B block (7 linears): %.2f h; 32 blocks: %.1f h = %.2f days\n", block / 3600, 32 * block / 3600, 32 * block / 86400
    if (!(3 in q)) exit
    printf "CASP-AQLM per layer: measurement (AQLM 2x8 and 3x8 on v, o, gate, up, down) %.2f h + compression (five linears, 2x8) %.2f h; 32 layers: %.1f h = %.2f days\n", \
      (five[2] + five[3]) / 3600, five[2] / 3600, 32 * (2 * five[2] + five[3]) / 3600, 32 * (2 * five[2] + five[3]) / 86400
  }' "$results"
