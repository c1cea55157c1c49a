#!/usr/bin/env bash
# Exact thin SVD: `casp bench svd` (DenseSvd, float64 inside) against numpy.linalg.svd (LAPACK
# gesdd on float32), measured back to back in one run so both see the same machine load.
# Usage: bench/svd-vs-numpy.sh [rounds] [n]   (from anywhere; needs ../shared next to the repo)
# Prints every pair and the median of casp seconds / numpy seconds (below 1: casp is faster).
# numpy_ref reports the best of 2 runs after one warm-up; casp the median of 5 after 3 warm-ups.
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
shared="${CASP_SHARED:-$here/../shared}"
rounds="${1:-5}"
n="${2:-1000}"
secs() { python3 -c 'import json,sys; print(json.loads(sys.stdin.read())["seconds"])'; }
ratios=()
for ((i = 1; i <= rounds; i++)); do
  load=$(cut -d' ' -f1 /proc/loadavg)
  np=$(env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE python3 "$shared/bench/numpy_ref.py" svd "$n" | secs)
  cj=$("$here/casp" bench svd --n "$n" --json 2>/dev/null | secs)
  r=$(python3 -c "print(f'{$cj/$np:.3f}')")
  ratios+=("$r")
  printf 'svd %d round %d: numpy %.3f s, casp %.3f s, casp/numpy %s (load %s)\n' "$n" "$i" "$np" "$cj" "$r" "$load"
done
printf 'svd %d median casp/numpy time ratio: %s\n' "$n" "$(printf '%s\n' "${ratios[@]}" | sort -n | awk '{a[NR]=$1} END {print (NR%2 ? a[(NR+1)/2] : (a[NR/2]+a[NR/2+1])/2)}')"
