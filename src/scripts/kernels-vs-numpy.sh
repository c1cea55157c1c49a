#!/usr/bin/env bash
# Ratios of `casp bench` to ../shared/bench/numpy_ref.py (numpy + OpenBLAS), measured in one run.
# Each round runs numpy then casp back to back, so both see the same machine load; the script
# prints every pair and, per benchmark, the median ratio (and the ratio of the best runs: numpy_ref
# reports its best of 5, `casp bench` the median after warm-up). OPENBLAS_CORETYPE /
# OPENBLAS_L2_SIZE are unset for numpy only (they pin an older, slower OpenBLAS kernel on some machines).
# Usage: src/scripts/kernels-vs-numpy.sh [rounds] [benchmark ...]
#   benchmarks: gemm syrk chol rsvd matvec svd (default: all but svd)
# Ratios (the issue's targets): gemm, syrk, chol: casp GFLOPS / numpy GFLOPS (>= 0.75);
# rsvd, svd: numpy seconds / casp seconds (>= 1: no slower); matvec: GB/s of packed 2-bit
# weights / numpy's `membw 512` GB/s (>= 0.5).
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/common.sh" "$@" # sets here, shared; answers -h
rounds="${1:-5}"; shift || true
benches=("$@"); [ ${#benches[@]} -gt 0 ] || benches=(gemm syrk chol rsvd matvec)
numpy() { env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE python3 "$shared/bench/numpy_ref.py" "$@"; }
casp() { "$here/casp" bench "$@" --json 2>/dev/null; }
json_field() { python3 -c 'import json,sys; d=json.loads(sys.stdin.read()); print(d.get("'"$1"'", d["seconds"]))'; }
median() { printf '%s\n' "$@" | sort -n | awk '{a[NR]=$1} END {print (NR%2 ? a[(NR+1)/2] : (a[NR/2]+a[NR/2+1])/2)}'; }
"$here/casp" --version >/dev/null 2>&1 || true # builds the jar first if the sources changed
for b in "${benches[@]}"; do
  # how: "rate" = casp/numpy of a rate field; "time" = numpy seconds / casp seconds
  case "$b" in
    gemm) np=(gemm 2048); cj=(gemm --n 2048); how=rate; nf=gflops; cf=gflops ;;
    syrk) np=(syrk 8192 1024); cj=(syrk --tokens 8192 --dim 1024); how=rate; nf=gflops; cf=gflops ;;
    chol) np=(chol 2048); cj=(chol --n 2048); how=rate; nf=gflops; cf=gflops ;;
    rsvd) np=(rsvd 4096 4096 512 2); cj=(rsvd --m 4096 --n 4096 --rank 512 --power-iters 2); how=time; nf=seconds; cf=seconds ;;
    svd) np=(svd 1000); cj=(svd --n 1000); how=time; nf=seconds; cf=seconds ;;
    matvec) np=(membw 512); cj=(matvec --bits 2 --rows 16384 --cols 16384); how=rate; nf=gbytes_per_s; cf=gbytes_per_s ;;
    *) echo "unknown benchmark $b" >&2; exit 2 ;;
  esac
  ratios=(); bests=()
  for ((i = 1; i <= rounds; i++)); do
    load=$(cut -d' ' -f1 /proc/loadavg)
    nj=$(numpy "${np[@]}"); cjs=$(casp "${cj[@]}")
    n=$(json_field "$nf" <<<"$nj"); c=$(json_field "$cf" <<<"$cjs")
    # casp's best run, in the same unit: rates scale by seconds/best_seconds, times are best_seconds
    cb=$(python3 -c 'import json,sys; d=json.loads(sys.argv[1]); f=sys.argv[2]; s=d["seconds"]; b=d.get("best_seconds", s); print(b if f=="seconds" else d[f]*s/b)' "$cjs" "$cf")
    if [ "$how" = rate ]; then r=$(python3 -c "print(f'{$c/$n:.3f}')"); rb=$(python3 -c "print(f'{$cb/$n:.3f}')")
    else r=$(python3 -c "print(f'{$n/$c:.3f}')"); rb=$(python3 -c "print(f'{$n/$cb:.3f}')"); fi
    ratios+=("$r"); bests+=("$rb")
    printf '%s round %d: numpy %s %.4g, casp %s %.4g (best run %.4g), ratio %s, best-run ratio %s (load %s)\n' \
      "$b" "$i" "$nf" "$n" "$cf" "$c" "$cb" "$r" "$rb" "$load"
  done
  printf '%s median ratio: %s   median best-run ratio: %s\n' "$b" "$(median "${ratios[@]}")" "$(median "${bests[@]}")"
done
