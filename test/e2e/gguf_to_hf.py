#!/usr/bin/env python3
"""An independent route from a llama GGUF file to a Hugging Face checkpoint,
for reference comparisons: the `gguf` package (llama.cpp's own Python reader)
parses the file and dequantizes every tensor, numpy undoes llama.cpp's q/k row
permutation, and the result is written as config.json + model.safetensors
(f32) + tokenizer.json (byte-level BPE, for the `tokenizers` package). It
shares no code with llmc's GGUF importer.

  gguf_to_hf.py MODEL.gguf OUT_DIR SHARED_TOOLS_DIR
"""
import json
import os
import sys

import numpy as np
from gguf import GGUFReader
from gguf.quants import dequantize

src, out, tools = sys.argv[1], sys.argv[2], sys.argv[3]
sys.path.insert(0, tools)
import safetensors_np  # noqa: E402

r = GGUFReader(src)


def field(key, default=None):
    f = r.fields.get(key)
    return default if f is None else f.contents()


assert field("general.architecture") == "llama", field("general.architecture")
D = field("llama.embedding_length")
H = field("llama.attention.head_count")
KV = field("llama.attention.head_count_kv", H)
hd = D // H

names = {"token_embd.weight": "model.embed_tokens.weight",
         "output_norm.weight": "model.norm.weight",
         "output.weight": "lm_head.weight"}
parts = {"attn_norm": "input_layernorm", "ffn_norm": "post_attention_layernorm",
         "attn_q": "self_attn.q_proj", "attn_k": "self_attn.k_proj",
         "attn_v": "self_attn.v_proj", "attn_output": "self_attn.o_proj",
         "ffn_gate": "mlp.gate_proj", "ffn_up": "mlp.up_proj",
         "ffn_down": "mlp.down_proj"}


def unpermute(w, heads):
    # llama.cpp's convert permutes rows (heads, 2, hd/2) -> (heads, hd/2, 2).
    shape = w.shape
    return (w.reshape(heads, hd // 2, 2, *shape[1:]).swapaxes(1, 2)
            .reshape(shape))


tensors = {}
for t in r.tensors:
    w = dequantize(t.data, t.tensor_type).astype(np.float32)
    w = w.reshape([int(d) for d in reversed(t.shape)])
    if t.name in names:
        name = names[t.name]
    else:
        _, layer, part, suffix = t.name.split(".")
        name = "model.layers.%s.%s.%s" % (layer, parts[part], suffix)
        if part == "attn_q":
            w = unpermute(w, H)
        elif part == "attn_k":
            w = unpermute(w, KV)
    tensors[name] = np.ascontiguousarray(w)

os.makedirs(out, exist_ok=True)
safetensors_np.save(os.path.join(out, "model.safetensors"), tensors)
tokens = field("tokenizer.ggml.tokens")
config = {
    "architectures": ["LlamaForCausalLM"], "model_type": "llama",
    "hidden_size": D, "intermediate_size": field("llama.feed_forward_length"),
    "num_hidden_layers": field("llama.block_count"),
    "num_attention_heads": H, "num_key_value_heads": KV, "head_dim": hd,
    "vocab_size": len(tokens),
    "max_position_embeddings": field("llama.context_length"),
    "rms_norm_eps": float(field("llama.attention.layer_norm_rms_epsilon")),
    "rope_theta": float(field("llama.rope.freq_base", 10000.0)),
    "tie_word_embeddings": "lm_head.weight" not in tensors,
    "bos_token_id": field("tokenizer.ggml.bos_token_id"),
    "eos_token_id": field("tokenizer.ggml.eos_token_id"),
    "hidden_act": "silu", "torch_dtype": "float32",
}
json.dump(config, open(os.path.join(out, "config.json"), "w"), indent=1)

# tokenizer.json: the vocabulary and merges of the GGUF, with the
# pre-tokenizer Hugging Face publishes for tokenizer.ggml.pre.
if field("tokenizer.ggml.model") != "gpt2":
    print("gguf_to_hf.py: wrote %s (%d tensors; no tokenizer.json for a %s "
          "tokenizer)" % (out, len(tensors), field("tokenizer.ggml.model")))
    sys.exit(0)
types = field("tokenizer.ggml.token_type")
pre = field("tokenizer.ggml.pre")
byte_level = {"type": "ByteLevel", "add_prefix_space": False,
              "trim_offsets": True, "use_regex": True}
if pre == "smollm":
    pre_tok = {"type": "Sequence", "pretokenizers": [
        {"type": "Digits", "individual_digits": True}, byte_level]}
elif pre in ("gpt-2", "default"):
    pre_tok = byte_level
else:
    sys.exit("gguf_to_hf.py: no tokenizer.json recipe for pre-tokenizer " + pre)
added = [{"id": i, "content": tokens[i], "single_word": False, "lstrip": False,
          "rstrip": False, "normalized": False, "special": types[i] == 3}
         for i in range(len(tokens)) if types[i] in (3, 4)]
tok = {
    "version": "1.0", "truncation": None, "padding": None,
    "added_tokens": added, "normalizer": None, "pre_tokenizer": pre_tok,
    "post_processor": {"type": "ByteLevel", "add_prefix_space": False,
                       "trim_offsets": False, "use_regex": False},
    "decoder": {"type": "ByteLevel", "add_prefix_space": False,
                "trim_offsets": True, "use_regex": True},
    "model": {"type": "BPE", "dropout": None, "unk_token": None,
              "continuing_subword_prefix": None, "end_of_word_suffix": None,
              "fuse_unk": False, "byte_fallback": False, "ignore_merges": False,
              "vocab": {t: i for i, t in enumerate(tokens)},
              "merges": list(field("tokenizer.ggml.merges", []))},
}
json.dump(tok, open(os.path.join(out, "tokenizer.json"), "w"), ensure_ascii=False)
print("gguf_to_hf.py: wrote %s (%d tensors)" % (out, len(tensors)))
