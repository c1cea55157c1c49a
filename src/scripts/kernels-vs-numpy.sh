#!/usr/bin/env bash
# Ratios of `casp bench` to ../shared/bench/numpy_ref.py (numpy + OpenBLAS), measured in one run.
# Each round runs numpy then casp back to back, so both see the same machine load; the script
# prints every pair and the median ratio per benchmark. OPENBLAS_CORETYPE / OPENBLAS_L2_SIZE are
# unset for numpy only (they pin an older, slower OpenBLAS kernel on some machines).
# Usage: src/scripts/kernels-vs-numpy.sh [rounds] [benchmark ...]   benchmarks: gemm syrk chol
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
shared="${CASP_SHARED:-$here/../shared}"
if [ "${1:-}" = -h ] || [ "${1:-}" = --help ]; then
  sed -n '2,/^set -euo pipefail/{/^#/s/^# \{0,1\}//p}' "${BASH_SOURCE[0]}"
  echo "(repository: $here; shared assets: $shared)"
  exit 0
fi
rounds="${1:-5}"; shift || true
benches=("$@"); [ ${#benches[@]} -gt 0 ] || benches=(gemm syrk chol)
numpy() { env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE python3 "$shared/bench/numpy_ref.py" "$@"; }
casp() { "$here/casp" bench "$@" --json 2>/dev/null; }
rate() { python3 -c 'import json,sys; print(json.loads(sys.stdin.read())["gflops"])'; }
for b in "${benches[@]}"; do
  case "$b" in
    gemm) np=(gemm 2048); cj=(gemm --n 2048) ;;
    syrk) np=(syrk 8192 1024); cj=(syrk --tokens 8192 --dim 1024) ;;
    chol) np=(chol 2048); cj=(chol --n 2048) ;;
    *) echo "unknown benchmark $b" >&2; exit 2 ;;
  esac
  ratios=()
  for ((i = 1; i <= rounds; i++)); do
    load=$(cut -d' ' -f1 /proc/loadavg)
    n=$(numpy "${np[@]}" | rate); c=$(casp "${cj[@]}" | rate)
    r=$(python3 -c "print(f'{$c/$n:.3f}')")
    ratios+=("$r")
    printf '%s round %d: numpy %.1f GFLOPS, casp %.1f GFLOPS, ratio %s (load %s)\n' "$b" "$i" "$n" "$c" "$r" "$load"
  done
  printf '%s median ratio casp/numpy: %s\n' "$b" "$(printf '%s\n' "${ratios[@]}" | sort -n | awk '{a[NR]=$1} END {print (NR%2 ? a[(NR+1)/2] : (a[NR/2]+a[NR/2+1])/2)}')"
done
