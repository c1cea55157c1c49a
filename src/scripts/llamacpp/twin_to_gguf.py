#!/usr/bin/env python3
"""Write a llama.cpp GGUF (F16 weights, F32 norms) from a Llama-family Hugging Face folder such as a
`casp synth` twin, with llama.cpp's own gguf-py writer. Benchmark tooling only (not part of casp).

Tensors are converted one at a time (bf16/f16/f32 -> f16) and streamed to the file, so memory stays
at about one tensor. q/k rows are permuted from the Hugging Face rotary layout to GGML's, as
llama.cpp's converter does; the tokenizer is the folder's tokenizer.json vocabulary as a "llama"
(SentencePiece-style) vocabulary.

usage: PYTHONPATH=<llama.cpp>/gguf-py python3 twin_to_gguf.py MODEL_DIR OUT.gguf
"""
import json
import os
import struct
import sys

import numpy as np

try:
    import sentencepiece  # noqa: F401
except ImportError:  # gguf-py imports it for vocabularies not used here
    import types
    sys.modules["sentencepiece"] = types.SimpleNamespace(SentencePieceProcessor=None)
import gguf  # noqa: E402


def tensors_of(model_dir):
    """name -> (file, dtype, shape, absolute byte offset)"""
    index = os.path.join(model_dir, "model.safetensors.index.json")
    files = sorted(set(json.load(open(index))["weight_map"].values())) if os.path.exists(index) else ["model.safetensors"]
    out = {}
    for f in files:
        path = os.path.join(model_dir, f)
        with open(path, "rb") as fh:
            n = struct.unpack("<Q", fh.read(8))[0]
            header = json.loads(fh.read(n))
        for name, t in header.items():
            if name != "__metadata__":
                out[name] = (path, t["dtype"], t["shape"], 8 + n + t["data_offsets"][0])
    return out


def load(entry, out_dtype):
    path, dtype, shape, offset = entry
    count = int(np.prod(shape))
    raw = np.memmap(path, dtype={"BF16": np.uint16, "F16": np.float16, "F32": np.float32}[dtype], mode="r",
                    offset=offset, shape=(count,))
    a = (raw.astype(np.uint32) << 16).view(np.float32) if dtype == "BF16" else np.asarray(raw)
    return a.astype(out_dtype).reshape(shape)


def permute(w, heads):
    """Hugging Face rotary row order -> GGML's (interleaved pairs), as llama.cpp's converter permutes q/k."""
    rows = w.shape[0]
    return w.reshape(heads, 2, rows // heads // 2, *w.shape[1:]).swapaxes(1, 2).reshape(w.shape)


def main():
    model_dir, out_path = sys.argv[1], sys.argv[2]
    cfg = json.load(open(os.path.join(model_dir, "config.json")))
    text = cfg.get("text_config", cfg)
    prefix = "language_model.model." if "text_config" in cfg else "model."
    head = "language_model.lm_head.weight" if "text_config" in cfg else "lm_head.weight"
    d, layers, heads = text["hidden_size"], text["num_hidden_layers"], text["num_attention_heads"]
    kv_heads = text.get("num_key_value_heads", heads)
    src = tensors_of(model_dir)

    plan = [("token_embd.weight", prefix + "embed_tokens.weight", np.float16, None)]
    for i in range(layers):
        p = f"{prefix}layers.{i}."
        plan += [
            (f"blk.{i}.attn_norm.weight", p + "input_layernorm.weight", np.float32, None),
            (f"blk.{i}.attn_q.weight", p + "self_attn.q_proj.weight", np.float16, heads),
            (f"blk.{i}.attn_k.weight", p + "self_attn.k_proj.weight", np.float16, kv_heads),
            (f"blk.{i}.attn_v.weight", p + "self_attn.v_proj.weight", np.float16, None),
            (f"blk.{i}.attn_output.weight", p + "self_attn.o_proj.weight", np.float16, None),
            (f"blk.{i}.ffn_norm.weight", p + "post_attention_layernorm.weight", np.float32, None),
            (f"blk.{i}.ffn_gate.weight", p + "mlp.gate_proj.weight", np.float16, None),
            (f"blk.{i}.ffn_up.weight", p + "mlp.up_proj.weight", np.float16, None),
            (f"blk.{i}.ffn_down.weight", p + "mlp.down_proj.weight", np.float16, None),
        ]
    plan += [("output_norm.weight", prefix + "norm.weight", np.float32, None)]
    if head in src:
        plan += [("output.weight", head, np.float16, None)]

    w = gguf.GGUFWriter(out_path + ".tmp", "llama")
    w.add_name(os.path.basename(os.path.normpath(model_dir)))
    w.add_context_length(text.get("max_position_embeddings", 4096))
    w.add_embedding_length(d)
    w.add_block_count(layers)
    w.add_feed_forward_length(text["intermediate_size"])
    w.add_rope_dimension_count(d // heads)
    w.add_head_count(heads)
    w.add_head_count_kv(kv_heads)
    w.add_layer_norm_rms_eps(text.get("rms_norm_eps", 1e-5))
    w.add_rope_freq_base(text.get("rope_theta", 10000.0))
    w.add_file_type(gguf.LlamaFileType.MOSTLY_F16)

    tok = json.load(open(os.path.join(model_dir, "tokenizer.json")))
    vocab = {i: s for s, i in tok["model"]["vocab"].items()}
    for a in tok.get("added_tokens", []):
        vocab[a["id"]] = a["content"]
    special = {a["id"] for a in tok.get("added_tokens", []) if a.get("special")}
    n_vocab = text["vocab_size"]
    tokens, scores, types = [], [], []
    for i in range(n_vocab):
        s = vocab.get(i, f"[PAD{i}]")
        tokens.append(s)
        scores.append(-float(i))
        if i == 0:
            types.append(gguf.TokenType.UNKNOWN)
        elif i in special or i not in vocab:
            types.append(gguf.TokenType.CONTROL if i in special else gguf.TokenType.UNUSED)
        elif s.startswith("<0x") and len(s) == 6:
            types.append(gguf.TokenType.BYTE)
        else:
            types.append(gguf.TokenType.NORMAL)
    w.add_tokenizer_model("llama")
    w.add_tokenizer_pre("default")
    w.add_token_list(tokens)
    w.add_token_scores(scores)
    w.add_token_types(types)
    w.add_bos_token_id(1)
    w.add_eos_token_id(2)
    w.add_unk_token_id(0)

    for name, hf, dt, _ in plan:
        path, dtype, shape, off = src[hf]
        w.add_tensor_info(name, shape, np.dtype(dt), int(np.prod(shape)) * np.dtype(dt).itemsize)
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_ti_data_to_file()
    for k, (name, hf, dt, perm_heads) in enumerate(plan):
        a = load(src[hf], dt)
        if perm_heads:
            a = permute(a, perm_heads)
        w.write_tensor_data(np.ascontiguousarray(a))
        if k % 20 == 0:
            print(f"{k + 1}/{len(plan)} {name}", file=sys.stderr, flush=True)
    w.close()
    os.replace(out_path + ".tmp", out_path)


if __name__ == "__main__":
    main()
