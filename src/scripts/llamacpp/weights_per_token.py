#!/usr/bin/env python3
"""Bytes of weights one decoded token reads: every tensor of a model except the token embeddings
(of which one row is read) and GPTQ's g_idx (used at load only). MODEL is a Hugging Face / casp
folder or a GGUF file (needs PYTHONPATH=<llama.cpp>/gguf-py). Prints the byte count."""
import json
import os
import struct
import sys


def folder_tensors(d):
    index = os.path.join(d, "model.safetensors.index.json")
    files = sorted(set(json.load(open(index))["weight_map"].values())) if os.path.exists(index) else ["model.safetensors"]
    for f in files:
        with open(os.path.join(d, f), "rb") as fh:
            n = struct.unpack("<Q", fh.read(8))[0]
            for name, t in json.loads(fh.read(n)).items():
                if name != "__metadata__":
                    yield name, t["data_offsets"][1] - t["data_offsets"][0]


def gguf_tensors(path):
    try:
        import sentencepiece  # noqa: F401
    except ImportError:  # gguf-py imports it for vocabularies not used here
        import types
        sys.modules["sentencepiece"] = types.SimpleNamespace(SentencePieceProcessor=None)
    import gguf
    for t in gguf.GGUFReader(path).tensors:
        yield t.name, int(t.n_bytes)


def main():
    m = sys.argv[1]
    total = 0
    for name, nbytes in (gguf_tensors(m) if m.endswith(".gguf") else folder_tensors(m)):
        if "embed_tokens" in name or name.startswith("token_embd") or name.endswith(".g_idx"):
            continue
        total += nbytes
    print(total)


if __name__ == "__main__":
    main()
