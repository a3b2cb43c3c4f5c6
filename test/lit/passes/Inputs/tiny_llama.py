#!/usr/bin/env python3
"""Prints a small LLaMA in the llm dialect with seeded random weights and
calibration tokens: the fixture of the pass and compile tests.

  tiny_llama.py [SEED] [--stories260k] [--bias] [--mlp-bias] [--hetero] [--dead-mlp]

Default: one layer, hidden 64, FFN 96, 4 heads of 16 with 2 KV heads, vocab
16, 2 calibration windows of 16 tokens. --stories260k: one layer at
stories260K's shapes (hidden 64, FFN 172, 8 heads of 8, 4 KV heads, vocab
512). --bias: q/k/v/o_proj biases (attention_bias). --mlp-bias:
gate/up/down_proj biases (mlp_bias). --hetero: three layers
with their own head counts, KV-head counts and FFN widths, as a pruned model
has them. --dead-mlp: layer 1's up_proj is all zeros, so its MLP adds
nothing (structured pruning removes it whole). Python's random.Random is stable across versions, so the fixture
is the same everywhere.
"""
import random
import sys

args = [a for a in sys.argv[1:] if not a.startswith("--")]
flags = set(a for a in sys.argv[1:] if a.startswith("--"))
rng = random.Random(int(args[0]) if args else 7)
D, F, H, KV, HD, V = 64, 96, 4, 2, 16, 16
if "--stories260k" in flags:
    D, F, H, KV, HD, V = 64, 172, 8, 4, 8, 512
LAYERS = [(H, KV, F)]
if "--hetero" in flags:
    LAYERS = [(4, 2, 96), (2, 1, 40), (4, 4, 128)]
BIAS = "--bias" in flags
MLP_BIAS = "--mlp-bias" in flags
DEAD_MLP = "--dead-mlp" in flags
SEQ = 32


def fmt(v):
    return "%.4f" % v


def tensor(name, shape, kind="matrix"):
    n = 1
    for s in shape:
        n *= s
    if kind == "norm":
        vals = [1.0 + rng.uniform(-0.2, 0.2) for _ in range(n)]
    elif kind == "zero":
        vals = [0.0] * n
    elif kind == "bias":
        vals = [rng.gauss(0.0, 0.1) for _ in range(n)]
    else:
        vals = [rng.gauss(0.0, 0.3) for _ in range(n)]
    ty = "x".join(str(s) for s in shape)
    if len(shape) == 1:
        body = "[" + ", ".join(fmt(v) for v in vals) + "]"
    else:
        rows, cols = shape
        body = "[" + ", ".join("[" + ", ".join(fmt(vals[r * cols + c]) for c in range(cols)) + "]"
                               for r in range(rows)) + "]"
    print("  llm.global @%s : !llm.weight<%s, f32> = dense<%s> : tensor<%sxf32>" % (name, ty, body, ty))


calib = [[rng.randrange(3, V) for _ in range(16)] for _ in range(2)]
print("module attributes {llm.config = {hidden_size = %d : i64, intermediate_size = %d : i64, "
      "num_layers = %d : i64, num_heads = %d : i64, num_kv_heads = %d : i64, head_dim = %d : i64, "
      "vocab_size = %d : i64, max_seq_len = %d : i64, rms_norm_eps = 1.0e-05 : f64, "
      "rope_theta = 1.0e+04 : f64, tie_word_embeddings = true, bos_token_id = 1 : i64, "
      "eos_token_ids = [2]}, "
      "llm.calibration = dense<%s> : tensor<2x16xi32>} {"
      % (D, F, len(LAYERS), H, KV, HD, V, SEQ, calib))
body = []
emit = body.append
names = {}


def w(shape):
    return "!llm.weight<%s, f32>" % "x".join(str(s) for s in shape)


def act(n):
    return "tensor<?x%dxf32>" % n


def weight(name, shape, kind="matrix"):
    tensor(name, shape, kind)
    var = "%%w%d" % len(names)
    names[name] = var
    emit("    %s = llm.weight @%s : %s" % (var, name, w(shape)))
    return var


def linear(out, x, name, rows, cols, bias, kind="matrix"):
    wv = weight(name + ".weight", (rows, cols), kind)
    if bias:
        bv = weight(name + ".bias", (rows,), "bias")
        emit("    %s = llm.linear %s, %s bias %s : %s, %s, %s -> %s"
             % (out, x, wv, bv, act(cols), w((rows, cols)), w((rows,)), act(rows)))
    else:
        emit("    %s = llm.linear %s, %s : %s, %s -> %s" % (out, x, wv, act(cols), w((rows, cols)), act(rows)))


cache = "!llm.kv_cache<layers = %d, max_seq = %d>" % (len(LAYERS), SEQ)
e = weight("model.embed_tokens.weight", (V, D))
emit("    %%x0 = llm.embedding %%ids, %s : tensor<?xi32>, %s -> %s" % (e, w((V, D)), act(D)))
x = "%x0"
for l, (h, kv, f) in enumerate(LAYERS):
    p = "model.layers.%d." % l
    s = "_%d" % l
    n1 = weight(p + "input_layernorm.weight", (D,), "norm")
    emit("    %%h%s = llm.rms_norm %s, %s {eps = 1.0e-05 : f32} : %s, %s" % (s, x, n1, act(D), w((D,))))
    for nm, rows in (("q", h * HD), ("k", kv * HD), ("v", kv * HD)):
        linear("%%%s%s" % (nm, s), "%h" + s, p + "self_attn.%s_proj" % nm, rows, D, BIAS)
    emit("    %%qr%s = llm.rope %%q%s, %%pos {num_heads = %d : i64, head_dim = %d : i64, theta = 1.0e+04 : f32} : %s"
         % (s, s, h, HD, act(h * HD)))
    emit("    %%kr%s = llm.rope %%k%s, %%pos {num_heads = %d : i64, head_dim = %d : i64, theta = 1.0e+04 : f32} : %s"
         % (s, s, kv, HD, act(kv * HD)))
    emit("    %%a%s = llm.attention %%qr%s, %%kr%s, %%v%s, %%cache, %%pos {layer = %d : i64, num_heads = %d : i64, "
         "num_kv_heads = %d : i64, head_dim = %d : i64} : %s, %s, %s, %s -> %s"
         % (s, s, s, s, l, h, kv, HD, act(h * HD), act(kv * HD), act(kv * HD), cache, act(h * HD)))
    linear("%o" + s, "%a" + s, p + "self_attn.o_proj", D, h * HD, BIAS)
    emit("    %%x1%s = llm.add %s, %%o%s : %s" % (s, x, s, act(D)))
    n2 = weight(p + "post_attention_layernorm.weight", (D,), "norm")
    emit("    %%h2%s = llm.rms_norm %%x1%s, %s {eps = 1.0e-05 : f32} : %s, %s" % (s, s, n2, act(D), w((D,))))
    linear("%gate" + s, "%h2" + s, p + "mlp.gate_proj", f, D, MLP_BIAS)
    linear("%up" + s, "%h2" + s, p + "mlp.up_proj", f, D, MLP_BIAS,
           "zero" if DEAD_MLP and l == 1 else "matrix")
    emit("    %%s%s = llm.silu %%gate%s : %s" % (s, s, act(f)))
    emit("    %%m%s = llm.mul %%s%s, %%up%s : %s" % (s, s, s, act(f)))
    linear("%d" + s, "%m" + s, p + "mlp.down_proj", D, f, MLP_BIAS)
    emit("    %%x2%s = llm.add %%x1%s, %%d%s : %s" % (s, s, s, act(D)))
    x = "%x2" + s
n3 = weight("model.norm.weight", (D,), "norm")
emit("    %%hf = llm.rms_norm %s, %s {eps = 1.0e-05 : f32} : %s, %s" % (x, n3, act(D), w((D,))))
emit("    %%l = llm.lm_head %%hf, %s {tied} : %s, %s -> %s" % (e, act(D), w((V, D)), act(V)))
emit("    return %%l : %s" % act(V))
print("  func.func @forward(%%ids: tensor<?xi32>, %%pos: index, %%cache: %s) -> %s {" % (cache, act(V)))
print("\n".join(body))
print("  }")
print("}")
