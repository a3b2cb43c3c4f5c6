// A random tiny LLaMA written as an artifact, for tests of the loader and sessions.
#ifndef LLMC_TEST_UNIT_RUNTIME_TINYMODEL_H
#define LLMC_TEST_UNIT_RUNTIME_TINYMODEL_H

#include "runtime/artifact/writer.h"

#include <random>
#include <string>
#include <vector>

namespace llmc::test {

/// Owns the weight bytes that Contents points into.
struct TinyModel {
  artifact::Contents contents;
  std::vector<std::vector<float>> data;

  /// The LLaMA forward pass over the tensors above, as the compiler would
  /// write it for this model (unfused).
  static eval::Program program(int64_t layers) {
    using eval::Op;
    using eval::OpKind;
    eval::Program p;
    int32_t next = 0;
    auto op = [&](OpKind k, std::vector<int32_t> in, int64_t width,
                  int32_t weight = -1) {
      Op o;
      o.kind = k;
      o.inputs = std::move(in);
      o.results = {next++};
      o.widths = {width};
      o.weight = weight;
      p.ops.push_back(o);
      return &p.ops.back();
    };
    int32_t x = op(OpKind::Embedding, {}, 16, 0)->results[0];
    for (int64_t l = 0; l < layers; ++l) {
      const int32_t t = static_cast<int32_t>(1 + 9 * l);
      Op *n = op(OpKind::RMSNorm, {x}, 16, t);
      n->eps = 1e-5f;
      int32_t h = n->results[0];
      int32_t q = op(OpKind::Linear, {h}, 16, t + 1)->results[0];
      int32_t k = op(OpKind::Linear, {h}, 8, t + 2)->results[0];
      int32_t v = op(OpKind::Linear, {h}, 8, t + 3)->results[0];
      Op *rq = op(OpKind::RoPE, {q}, 16);
      rq->heads = 4, rq->headDim = 4, rq->theta = 10000.0f;
      q = rq->results[0];
      Op *rk = op(OpKind::RoPE, {k}, 8);
      rk->heads = 2, rk->headDim = 4, rk->theta = 10000.0f;
      k = rk->results[0];
      Op *a = op(OpKind::Attention, {q, k, v}, 16);
      a->heads = 4, a->kvHeads = 2, a->headDim = 4, a->layer = l;
      int32_t o = op(OpKind::Linear, {a->results[0]}, 16, t + 4)->results[0];
      x = op(OpKind::Add, {x, o}, 16)->results[0];
      Op *n2 = op(OpKind::RMSNorm, {x}, 16, t + 5);
      n2->eps = 1e-5f;
      h = n2->results[0];
      int32_t g = op(OpKind::Linear, {h}, 24, t + 6)->results[0];
      int32_t u = op(OpKind::Linear, {h}, 24, t + 7)->results[0];
      int32_t s = op(OpKind::SiLU, {g}, 24)->results[0];
      int32_t m = op(OpKind::Mul, {s, u}, 24)->results[0];
      int32_t d = op(OpKind::Linear, {m}, 16, t + 8)->results[0];
      x = op(OpKind::Add, {x, d}, 16)->results[0];
      p.cache.push_back({2, 4});
    }
    Op *fn = op(OpKind::RMSNorm, {x}, 16, static_cast<int32_t>(1 + 9 * layers));
    fn->eps = 1e-5f;
    p.output = op(OpKind::LMHead, {fn->results[0]}, 32, 0)->results[0];
    p.numValues = next;
    return p;
  }

  explicit TinyModel(uint32_t seed = 1, int64_t layers = 2) {
    auto &c = contents.config;
    c.hidden_size = 16;
    c.intermediate_size = 24;
    c.num_layers = layers;
    c.num_heads = 4;
    c.num_kv_heads = 2;
    c.head_dim = 4;
    c.vocab_size = 32;
    c.max_seq_len = 64;
    c.rms_norm_eps = 1e-5;
    c.rope_theta = 10000.0;
    c.tie_word_embeddings = true;
    c.bos_token_id = 1;
    c.eos_token_ids = {2};
    std::mt19937 rng(seed);
    std::normal_distribution<float> d(0.0f, 0.5f);
    auto add = [&](const std::string &name, std::vector<int64_t> shape,
                   bool ones = false) {
      int64_t n = 1;
      for (int64_t s : shape) {
        n *= s;
      }
      std::vector<float> v(n);
      for (float &x : v) {
        x = ones ? 1.0f + 0.1f * d(rng) : d(rng);
      }
      data.push_back(std::move(v));
      artifact::WriterTensor t;
      t.name = name;
      t.shape = shape;
      contents.tensors.push_back(t);
    };
    add("model.embed_tokens.weight", {32, 16});
    for (int64_t l = 0; l < layers; ++l) {
      std::string p = "model.layers." + std::to_string(l) + ".";
      add(p + "input_layernorm.weight", {16}, true);
      add(p + "self_attn.q_proj.weight", {16, 16});
      add(p + "self_attn.k_proj.weight", {8, 16});
      add(p + "self_attn.v_proj.weight", {8, 16});
      add(p + "self_attn.o_proj.weight", {16, 16});
      add(p + "post_attention_layernorm.weight", {16}, true);
      add(p + "mlp.gate_proj.weight", {24, 16});
      add(p + "mlp.up_proj.weight", {24, 16});
      add(p + "mlp.down_proj.weight", {16, 24});
    }
    add("model.norm.weight", {16}, true);
    for (size_t i = 0; i < data.size(); ++i) {
      contents.tensors[i].data = data[i].data();
      contents.tensors[i].size = data[i].size() * 4;
    }
    contents.program = program(layers);
    // A byte-level tokenizer: ids 3..258 are the bytes.
    auto &t = contents.tokenizer;
    t.pieces = {"<unk>", "<s>", "</s>"};
    t.types = {fb::TokenType::Unknown, fb::TokenType::Control,
               fb::TokenType::Control};
    for (int b = 0; b < 29; ++b) {
      char buf[8];
      std::snprintf(buf, sizeof buf, "<0x%02X>", b + 0x41);
      t.pieces.push_back(buf);
      t.types.push_back(fb::TokenType::Byte);
    }
    t.scores.assign(t.pieces.size(), 0.0f);
    t.add_dummy_prefix = false;
  }
};

} // namespace llmc::test

#endif // LLMC_TEST_UNIT_RUNTIME_TINYMODEL_H
