# Sourced by the scripts beside it (source "$(dirname "${BASH_SOURCE[0]}")/common.sh" "$@"):
# sets here (the repository root, or $CASP_REPO) and shared (../shared beside it, or $CASP_SHARED), and answers
# -h / --help with the calling script's header comment; defines field and stats.
here="${CASP_REPO:-$(cd "$(dirname "${BASH_SOURCE[1]}")/../.." && pwd)}"
shared="${CASP_SHARED:-$here/../shared}"
if [ "${1:-}" = -h ] || [ "${1:-}" = --help ]; then
  sed -n '2,/^set -euo pipefail/{/^#/s/^# \{0,1\}//p}' "${BASH_SOURCE[1]}"
  echo "(repository: $here; shared assets: $shared)"
  exit 0
fi

# field NAME < one-line JSON: the value of the first number field called NAME (top-level fields come first).
field() { grep -o "\"$1\":[^,}]*" | head -1 | cut -d: -f2; }
# stats: "mean ± sd" of the numbers on stdin, one per line.
stats() { awk '{x[NR]=$1; s+=$1} END {m=s/NR; for(i=1;i<=NR;i++) v+=(x[i]-m)^2; printf "%.3f ± %.3f", m, (NR>1? sqrt(v/(NR-1)) : 0)}'; }
