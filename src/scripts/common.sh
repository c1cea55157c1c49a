# Sourced by the scripts beside it (source "$(dirname "${BASH_SOURCE[0]}")/common.sh" "$@"):
# sets here (the repository root, or $CASP_REPO) and shared (../shared beside it, or $CASP_SHARED), and answers
# -h / --help with the calling script's header comment.
here="${CASP_REPO:-$(cd "$(dirname "${BASH_SOURCE[1]}")/../.." && pwd)}"
shared="${CASP_SHARED:-$here/../shared}"
if [ "${1:-}" = -h ] || [ "${1:-}" = --help ]; then
  sed -n '2,/^set -euo pipefail/{/^#/s/^# \{0,1\}//p}' "${BASH_SOURCE[1]}"
  echo "(repository: $here; shared assets: $shared)"
  exit 0
fi
