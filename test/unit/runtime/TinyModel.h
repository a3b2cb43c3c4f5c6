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
