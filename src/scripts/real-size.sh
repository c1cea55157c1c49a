#!/usr/bin/env bash
# Real-size figures on shape twins (random weights, published shapes): a 7B LLaVA's parameters, the
# peak RSS and speed of `casp generate` with an image, and casp against llama.cpp on llama-2-7b
# (full depth and a 2-layer cut), F16 / Q2_K / IQ2_XXS against casp bf16 / 2-bit RTN / 2-bit QuIP#,
# 2 threads, back to back.
# Each heavy step runs under the shared lock /tmp/casp-timing.lock and prints the load average.
#
# usage: src/scripts/real-size.sh WORK_DIR [step ...]
#   steps: llava (synth + inspect + generate), llama (synth), gguf, bench, busy (default: all)
#   MODELS: the llama twins of the gguf and bench steps (default "llama-2-7b-2l llama-2-7b")
#   TWO_BIT: the casp 2-bit folders the gguf step builds, "rtn quip" by default (QuIP# takes ~7 min
#   per 7B block: TWO_BIT=rtn for the full-depth twin unless hours are at hand)
#   WEIGHTS: casp bench decode's --weights (auto, map or heap; default auto: the heap for the cut,
#   mapped for the full-depth 13.5 GB twin on a 24 GiB machine)
#   CASP_LOCK=none when the caller already holds /tmp/casp-timing.lock
#   needs: ~45 GB free in WORK_DIR; LLAMA_CPP_SRC (a llama.cpp checkout, default /work/llama.cpp-src)
#   and LLAMA_CPP_BUILD (its cmake build with llama-bench, llama-quantize and llama-imatrix, default
#   /work/llama.cpp-build)
#   for the gguf / bench steps. Delete WORK_DIR afterwards: it holds ~45 GB of twins and GGUF files.
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
repo="$(cd "$here/../.." && pwd)"
work="${1:?usage: real-size.sh WORK_DIR [step ...]}"; shift
steps="${*:-llava llama gguf bench busy}"
src="${LLAMA_CPP_SRC:-/work/llama.cpp-src}"
build="${LLAMA_CPP_BUILD:-/work/llama.cpp-build}"
image="${IMAGE:-$repo/../shared/images/photos/astronaut.png}"
MODELS="${MODELS:-llama-2-7b-2l llama-2-7b}" # the llama twins of the gguf and bench steps
TWO_BIT="${TWO_BIT:-rtn quip}"
mkdir -p "$work"
"$repo/casp" --version >/dev/null   # builds target/casp.jar if needed
cp "$repo/target/casp.jar" "$work/casp.jar" # a fixed copy: later source edits do not rebuild it mid-run
casp=(java --add-modules jdk.incubator.vector -XX:MaxRAMPercentage=75 -XX:+UseG1GC -XX:MaxNewSize=1g -XX:+UseTransparentHugePages -jar "$work/casp.jar")
lock="${CASP_LOCK:-/tmp/casp-timing.lock}" # CASP_LOCK=none: the caller holds the lock already
heavy() { if [ "$lock" = none ]; then "$@"; else flock "$lock" "$@"; fi; }
load() { echo "  [load: $(uptime | sed 's/.*load average: //')]"; }
has() { [[ " $steps " == *" $1 "* ]]; }

if has llava; then
  echo "== llava-1.5-7b twin (bf16, full depth)"
  [ -d "$work/llava-1.5-7b" ] || heavy "${casp[@]}" synth --like llava-1.5-7b --dtype bf16 --out "$work/llava-1.5-7b"
  du -sh "$work/llava-1.5-7b"
  "${casp[@]}" inspect "$work/llava-1.5-7b" | sed -n '/^parameters/,/language model/p'
  echo "== casp generate with an image (peak RSS by /usr/bin/time -v)"
  load
  heavy /usr/bin/time -v "${casp[@]}" generate --model "$work/llava-1.5-7b" --image "$image" \
      --prompt "What is shown in this picture?" --max-tokens 8 --json > "$work/generate.json" 2> "$work/generate.time"
  load
  python3 -c "import json,sys; o=json.load(open(sys.argv[1])); print('  prompt %d tokens (%d visual), load %.1f s, vision tower %.1f s, projector %.2f s, prefill %.1f tok/s, decode %.2f tok/s' % (len(o['prompt_ids']), o['visual_tokens'], o['load_seconds'], o['vision_tower_s'], o['projector_s'], o['prefill_tokens_per_s'], o['decode_tokens_per_s']))" "$work/generate.json"
  grep -E "Maximum resident set size|Elapsed" "$work/generate.time" | sed 's/^\s*/  /'
fi

if has llama; then
  echo "== llama-2-7b twins (bf16): full depth and a 2-layer cut"
  [ -d "$work/llama-2-7b" ] || heavy "${casp[@]}" synth --like llama-2-7b --dtype bf16 --out "$work/llama-2-7b"
  [ -d "$work/llama-2-7b-2l" ] || heavy "${casp[@]}" synth --like llama-2-7b --dtype bf16 --layers 2 --out "$work/llama-2-7b-2l"
fi

if has gguf; then
  echo "== GGUF F16 (llama.cpp's gguf-py) and Q2_K (llama-quantize), casp 2-bit RTN folders"
  calib="$work/calib.txt"
  python3 -c "print(' '.join(['the quick brown fox jumps over the lazy dog'] * 200))" > "$calib"
  for m in $MODELS; do
    [ -f "$work/$m-f16.gguf" ] || heavy env PYTHONPATH="$src/gguf-py" python3 "$here/llamacpp/twin_to_gguf.py" "$work/$m" "$work/$m-f16.gguf"
    [ -f "$work/$m-q2_k.gguf" ] || heavy "$build/bin/llama-quantize" "$work/$m-f16.gguf" "$work/$m-q2_k.gguf" Q2_K 2 > "$work/$m-quantize.log" 2>&1
    # IQ2_XXS (2.06 bits, 8 weights per code from an E8-lattice grid with signs: the llama.cpp format
    # nearest to QuIP#'s E8P); llama-quantize wants an importance matrix for it (here from the same
    # text, meaningless on random weights, and speed does not depend on it)
    if [[ " $TWO_BIT " == *" quip "* ]] && [ ! -f "$work/$m-iq2_xxs.gguf" ] && [ -x "$build/bin/llama-imatrix" ]; then
      heavy "$build/bin/llama-imatrix" -m "$work/$m-f16.gguf" -f "$calib" -c 128 --chunks 4 -t 2 -o "$work/$m-imatrix.dat" > "$work/$m-imatrix.log" 2>&1
      heavy "$build/bin/llama-quantize" --imatrix "$work/$m-imatrix.dat" "$work/$m-f16.gguf" "$work/$m-iq2_xxs.gguf" IQ2_XXS 2 >> "$work/$m-quantize.log" 2>&1
    fi
    # 2-bit RTN, group 128 (GPTQ v1 folder): calibration is only run, not used, by RTN
    [[ " $TWO_BIT " != *" rtn "* ]] || [ -d "$work/$m-rtn2" ] || heavy "${casp[@]}" compress --model "$work/$m" --calib "$calib" --method rtn --bits 2 \
        --samples 1 --seq-len 32 --out "$work/$m-rtn2" > "$work/$m-rtn2.log" 2>&1
    # 2-bit QuIP# (E8P codes): the random twin's weights make its quality meaningless, its speed is not
    [[ " $TWO_BIT " != *" quip "* ]] || [ -d "$work/$m-quip2" ] || heavy "${casp[@]}" compress --model "$work/$m" --calib "$calib" --method quip --bits 2 \
        --samples 1 --seq-len 32 --out "$work/$m-quip2" > "$work/$m-quip2.log" 2>&1
  done
  ls -la "$work"/*.gguf
fi

# tok/s of llama-bench (pp = prefill of P tokens, tg = decode of N tokens) and casp bench decode
P="${PROMPT_TOKENS:-64}"; N="${DECODE_TOKENS:-16}"; WEIGHTS="${WEIGHTS:-auto}"
bench_pair() { # name casp-folder gguf: llama-bench then casp bench decode, back to back
  local name="$1" folder="$2" gguf="$3"
  echo "-- $name"
  [ -e "$folder" ] && [ -e "$gguf" ] || { echo "  skipped: $folder or $gguf is missing"; return 0; }
  load
  heavy "$build/bin/llama-bench" -m "$gguf" -t 2 -p "$P" -n "$N" -r 2 -o json > "$work/lb.json" 2>/dev/null
  heavy "${casp[@]}" bench decode --model "$folder" --weights "$WEIGHTS" --prompt-tokens "$P" --decode-tokens "$N" --runs 2 --warmup 1 \
      --warmup-seconds 0 --json > "$work/cb.json"
  load
  local cb lb
  cb=$(python3 "$here/llamacpp/weights_per_token.py" "$folder")
  lb=$(PYTHONPATH="$src/gguf-py" python3 "$here/llamacpp/weights_per_token.py" "$gguf")
  python3 - "$work/lb.json" "$work/cb.json" "$lb" "$cb" <<'PY'
import json, sys
lb, cb = json.load(open(sys.argv[1])), json.load(open(sys.argv[2]))["results"][0]
lb_bytes, cb_bytes = int(sys.argv[3]), int(sys.argv[4])
pp = next(r["avg_ts"] for r in lb if r["n_prompt"] > 0)
tg = next(r["avg_ts"] for r in lb if r["n_gen"] > 0)
cpp, ctg = cb["prefill_tokens_per_s"], cb["decode_tokens_per_s"]
print("  prefill %d tok: llama.cpp %.2f tok/s, casp %.2f tok/s, casp/llama.cpp %.2f" % (cb["prompt_tokens"], pp, cpp, cpp / pp))
print("  decode  %d tok: llama.cpp %.3f tok/s, casp %.3f tok/s, casp/llama.cpp %.2f (casp's 16-bit weights: %s)"
      % (cb["decode_tokens"], tg, ctg, ctg / tg, cb.get("weights", "-")))
print("  weights read per token: llama.cpp %.3f GB (%.1f GB/s), casp %.3f GB (%.1f GB/s)"
      % (lb_bytes / 1e9, lb_bytes * tg / 1e9, cb_bytes / 1e9, cb_bytes * ctg / 1e9))
PY
}

if has bench; then
  echo "== casp vs llama.cpp, 2 threads (casp: -Dcasp.threads=2 is the default on 2 cores)"
  for m in $MODELS; do
    bench_pair "$m: casp bf16 vs llama.cpp F16" "$work/$m" "$work/$m-f16.gguf"
    bench_pair "$m: casp 2-bit RTN g128 vs llama.cpp Q2_K" "$work/$m-rtn2" "$work/$m-q2_k.gguf"
    bench_pair "$m: casp 2-bit QuIP# vs llama.cpp Q2_K" "$work/$m-quip2" "$work/$m-q2_k.gguf"
    bench_pair "$m: casp 2-bit QuIP# vs llama.cpp IQ2_XXS" "$work/$m-quip2" "$work/$m-iq2_xxs.gguf"
  done
fi

if has busy; then
  echo "== 2 threads while another process holds a core (a busy loop), llama-2-7b-2l"
  ( while :; do :; done ) & busy=$!
  trap 'kill $busy 2>/dev/null' EXIT
  bench_pair "llama-2-7b-2l busy: casp bf16 vs llama.cpp F16" "$work/llama-2-7b-2l" "$work/llama-2-7b-2l-f16.gguf"
  bench_pair "llama-2-7b-2l busy: casp 2-bit vs llama.cpp Q2_K" "$work/llama-2-7b-2l-rtn2" "$work/llama-2-7b-2l-q2_k.gguf"
  kill $busy
fi
