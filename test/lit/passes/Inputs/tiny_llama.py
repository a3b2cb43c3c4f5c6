#!/usr/bin/env python3
"""Prints a one-layer LLaMA in the llm dialect with seeded random weights and
calibration tokens: the fixture of the quantization pass tests.

  tiny_llama.py [SEED]

hidden 64, FFN 96, 4 heads of 16 with 2 KV heads, vocab 16, 2 calibration
windows of 16 tokens. Python's random.Random is stable across versions, so
the fixture is the same everywhere.
"""
import random
import sys

rng = random.Random(int(sys.argv[1]) if len(sys.argv) > 1 else 7)
D, F, H, KV, HD, V = 64, 96, 4, 2, 16, 16


def tensor(name, shape, kind="matrix"):
    n = 1
    for s in shape:
        n *= s
    if kind == "norm":
        vals = [1.0 + rng.uniform(-0.2, 0.2) for _ in range(n)]
    else:
        vals = [rng.gauss(0.0, 0.3) for _ in range(n)]
    body = ", ".join("%.4f" % v for v in vals)
    ty = "x".join(str(s) for s in shape)
    print('  llm.global @%s : !llm.weight<%s, f32> = dense<[%s]> : tensor<%dxf32>'
          % (name, ty, body, n) if len(shape) == 1 else
          '  llm.global @%s : !llm.weight<%s, f32> = dense<%s> : tensor<%sxf32>'
          % (name, ty, nested(vals, shape), ty))


def nested(vals, shape):
    rows, cols = shape
    return "[" + ", ".join(
        "[" + ", ".join("%.4f" % vals[r * cols + c] for c in range(cols)) + "]"
        for r in range(rows)) + "]"


calib = [[rng.randrange(3, V) for _ in range(16)] for _ in range(2)]
print("module attributes {llm.config = {hidden_size = %d : i64, intermediate_size = %d : i64, "
      "num_layers = 1 : i64, num_heads = %d : i64, num_kv_heads = %d : i64, head_dim = %d : i64, "
      "vocab_size = %d : i64, max_seq_len = 32 : i64, rms_norm_eps = 1.0e-05 : f64, "
      "rope_theta = 1.0e+04 : f64, tie_word_embeddings = true}, "
      "llm.calibration = dense<%s> : tensor<2x16xi32>} {" % (D, F, H, KV, HD, V, calib))
tensor("model.embed_tokens.weight", (V, D))
p = "model.layers.0."
tensor(p + "input_layernorm.weight", (D,), "norm")
tensor(p + "self_attn.q_proj.weight", (H * HD, D))
tensor(p + "self_attn.k_proj.weight", (KV * HD, D))
tensor(p + "self_attn.v_proj.weight", (KV * HD, D))
tensor(p + "self_attn.o_proj.weight", (D, H * HD))
tensor(p + "post_attention_layernorm.weight", (D,), "norm")
tensor(p + "mlp.gate_proj.weight", (F, D))
tensor(p + "mlp.up_proj.weight", (F, D))
tensor(p + "mlp.down_proj.weight", (D, F))
tensor("model.norm.weight", (D,), "norm")


def w(name, shape):
    ty = "x".join(str(s) for s in shape)
    return "!llm.weight<%s, f32>" % ty


def act(n):
    return "tensor<?x%dxf32>" % n


# @forward, as the importer writes it.
L = []
emit = L.append
emit("  func.func @forward(%%ids: tensor<?xi32>, %%pos: index, "
     "%%cache: !llm.kv_cache<layers = 1, max_seq = 32>) -> tensor<?x%dxf32> {" % V)
ref = {}


def weight(name, shape):
    var = "%w" + str(len(ref))
    ref[name] = var
    emit("    %s = llm.weight @%s : %s" % (var, name, w(name, shape)))
    return var


e = weight("model.embed_tokens.weight", (V, D))
emit("    %%x0 = llm.embedding %%ids, %s : tensor<?xi32>, %s -> %s" % (e, w("", (V, D)), act(D)))
n1 = weight(p + "input_layernorm.weight", (D,))
emit("    %%h = llm.rms_norm %%x0, %s {eps = 1.0e-05 : f32} : %s, %s" % (n1, act(D), w("", (D,))))
for nm, rows in (("q", H * HD), ("k", KV * HD), ("v", KV * HD)):
    wv = weight(p + "self_attn.%s_proj.weight" % nm, (rows, D))
    emit("    %%%s = llm.linear %%h, %s : %s, %s -> %s" % (nm, wv, act(D), w("", (rows, D)), act(rows)))
emit("    %%qr = llm.rope %%q, %%pos {num_heads = %d : i64, head_dim = %d : i64, theta = 1.0e+04 : f32} : %s" % (H, HD, act(H * HD)))
emit("    %%kr = llm.rope %%k, %%pos {num_heads = %d : i64, head_dim = %d : i64, theta = 1.0e+04 : f32} : %s" % (KV, HD, act(KV * HD)))
emit("    %%a = llm.attention %%qr, %%kr, %%v, %%cache, %%pos {layer = 0 : i64, num_heads = %d : i64, "
     "num_kv_heads = %d : i64, head_dim = %d : i64} : %s, %s, %s, !llm.kv_cache<layers = 1, max_seq = 32> -> %s"
     % (H, KV, HD, act(H * HD), act(KV * HD), act(KV * HD), act(H * HD)))
wo = weight(p + "self_attn.o_proj.weight", (D, H * HD))
emit("    %%o = llm.linear %%a, %s : %s, %s -> %s" % (wo, act(H * HD), w("", (D, H * HD)), act(D)))
emit("    %%x1 = llm.add %%x0, %%o : %s" % act(D))
n2 = weight(p + "post_attention_layernorm.weight", (D,))
emit("    %%h2 = llm.rms_norm %%x1, %s {eps = 1.0e-05 : f32} : %s, %s" % (n2, act(D), w("", (D,))))
for nm in ("gate", "up"):
    wv = weight(p + "mlp.%s_proj.weight" % nm, (F, D))
    emit("    %%%s = llm.linear %%h2, %s : %s, %s -> %s" % (nm, wv, act(D), w("", (F, D)), act(F)))
emit("    %%s = llm.silu %%gate : %s" % act(F))
emit("    %%m = llm.mul %%s, %%up : %s" % act(F))
wd = weight(p + "mlp.down_proj.weight", (D, F))
emit("    %%d = llm.linear %%m, %s : %s, %s -> %s" % (wd, act(F), w("", (D, F)), act(D)))
emit("    %%x2 = llm.add %%x1, %%d : %s" % act(D))
n3 = weight("model.norm.weight", (D,))
emit("    %%hf = llm.rms_norm %%x2, %s {eps = 1.0e-05 : f32} : %s, %s" % (n3, act(D), w("", (D,))))
emit("    %%l = llm.lm_head %%hf, %s {tied} : %s, %s -> %s" % (e, act(D), w("", (V, D)), act(V)))
emit("    return %%l : %s" % act(V))
emit("  }")
print("\n".join(L))
print("}")
