#!/usr/bin/env bash
# Memory/time check, run by hand (not in CI): compress a generated Llama-shaped model with random
# weights (hidden 2048, intermediate 5632, 8 layers, 16 heads, vocab 32000; BF16, ~1.1 GB on disk)
# with GPTQ 2-bit, and print the report (time per block, peak heap, peak RSS).
#
#   src/scripts/big-synthetic-compress.sh [WORK_DIR]      (SAMPLES / SEQ_LEN override the calibration size)
#
# The folder gets stories260K's tokenizer (512 ids, all inside the vocabulary) so that its
# eval.txt can serve as calibration text.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/common.sh" "$@" # sets here, shared; answers -h
work="${1:-$(mktemp -d)}"
SAMPLES="${SAMPLES:-32}"
SEQ_LEN="${SEQ_LEN:-512}"
model="$work/synthetic-2048x8"
"$here/casp" --version >/dev/null # builds the jar if needed
if [ ! -f "$model/config.json" ]; then
  echo "generating $model ..." >&2
  cat > "$work/gen.jsh" <<JSH
import casp.model.SyntheticModel;
import casp.tensor.DType;
var c = SyntheticModel.config("llama", 2048, 5632, 8, 16, 16, 128, 32000, 2048, 10000, null, false);
SyntheticModel.write(java.nio.file.Path.of("$model"), c, SyntheticModel.tensors(c, 1), DType.BF16);
/exit
JSH
  jshell -R-Xmx12g --class-path "$here/target/casp.jar" "$work/gen.jsh"
  for f in tokenizer.json tokenizer_config.json special_tokens_map.json; do
    cp "$shared/models/stories260K/model/$f" "$model/"
  done
fi
du -sh "$model"
rm -rf "$work/out"
/usr/bin/time -v "$here/casp" compress --model "$model" --calib "$shared/models/stories260K/reference/eval.txt" \
  --method gptq --bits 2 --samples "$SAMPLES" --seq-len "$SEQ_LEN" --out "$work/out" 2> "$work/time.txt"
grep -E "Maximum resident|Elapsed" "$work/time.txt"
