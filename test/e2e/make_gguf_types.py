#!/usr/bin/env python3
"""Writes a small llama GGUF with llama.cpp's own writer (the `gguf` package),
each weight in a different ggml type: F32, F16, BF16, Q8_0, Q4_0, Q4_1 (from
random weights by the package's quantizers) and Q4_K, Q6_K (random blocks
with sane scales: the package has no K-quantizer). For testing llmc's reader
and dequantization against the package's.

  make_gguf_types.py OUT.gguf
"""
import sys

import numpy as np
import gguf
from gguf import GGMLQuantizationType as T
from gguf.quants import quantize

rng = np.random.default_rng(7)
D, F, H, KV, V = 256, 512, 4, 2, 259  # K-quants need rows of 256
w = gguf.GGUFWriter(sys.argv[1], "llama")
w.add_block_count(2)
w.add_context_length(64)
w.add_embedding_length(D)
w.add_feed_forward_length(F)
w.add_head_count(H)
w.add_head_count_kv(KV)
w.add_layer_norm_rms_eps(1e-5)
w.add_rope_freq_base(10000.0)
w.add_rope_dimension_count(D // H)
tokens = ["<|endoftext|>", "<s>", "</s>"]
byte_map = {}
n = 0
for b in range(256):
    if 33 <= b <= 126 or 161 <= b <= 172 or 174 <= b <= 255:
        byte_map[b] = chr(b)
    else:
        byte_map[b] = chr(256 + n)
        n += 1
tokens += [byte_map[b] for b in range(256)]
w.add_tokenizer_model("gpt2")
w.add_tokenizer_pre("gpt-2")
w.add_token_list(tokens)
w.add_token_types([3, 3, 3] + [1] * 256)
w.add_token_merges([])
w.add_bos_token_id(1)
w.add_eos_token_id(2)


def k_blocks(rows, cols, qtype):
    """Random K-quant blocks whose f16 scales are small and finite."""
    block, size = gguf.GGML_QUANT_SIZES[qtype]
    raw = rng.integers(0, 256, size=(rows, cols // block, size), dtype=np.uint8)
    scale = np.frombuffer(np.float16(0.002).tobytes(), dtype=np.uint8)
    if qtype == T.Q4_K:      # d, dmin at bytes 0..3
        raw[..., 0:2] = scale
        raw[..., 2:4] = scale
    else:                    # Q6_K: d at the last two bytes
        raw[..., size - 2:size] = scale
    return raw.reshape(rows, -1)


def add(name, rows, cols, qtype, std=0.05):
    x = (rng.standard_normal((rows, cols)) * std).astype(np.float32)
    if qtype == T.F32:
        w.add_tensor(name, x)
    elif qtype in (T.Q4_K, T.Q6_K):
        w.add_tensor(name, k_blocks(rows, cols, qtype), raw_dtype=qtype)
    else:
        w.add_tensor(name, quantize(x, qtype), raw_dtype=qtype)


types = [T.F16, T.BF16, T.Q8_0, T.Q4_0, T.Q4_1, T.Q4_K, T.Q6_K]
add("token_embd.weight", V, D, T.Q8_0)
for layer in range(2):
    p = "blk.%d." % layer
    w.add_tensor(p + "attn_norm.weight", (1 + 0.1 * rng.standard_normal(D)).astype(np.float32))
    w.add_tensor(p + "ffn_norm.weight", (1 + 0.1 * rng.standard_normal(D)).astype(np.float32))
    shapes = [("attn_q", D, D), ("attn_k", KV * D // H, D), ("attn_v", KV * D // H, D),
              ("attn_output", D, D), ("ffn_gate", F, D), ("ffn_up", F, D), ("ffn_down", D, F)]
    for i, (part, rows, cols) in enumerate(shapes):
        add(p + part + ".weight", rows, cols, types[(i + layer) % len(types)])
w.add_tensor("output_norm.weight", np.ones(D, dtype=np.float32))
add("output.weight", V, D, T.Q6_K)
w.write_header_to_file()
w.write_kv_data_to_file()
w.write_tensors_to_file()
w.close()
