// Checkpoint export: Hugging Face safetensors directories and GGUF files.
#include "compiler/WriteOutput.h"
#include "compiler/Export.h"

#include "compiler/GgufWriter.h"
#include "compiler/SafetensorsWriter.h"
#include "compiler/TokenizerImport.h"
#include "runtime/kernels/kernels.h"

#include "llvm/Support/FileSystem.h"
#include "llvm/Support/raw_ostream.h"

#include <nlohmann/json.hpp>

#include "llvm/ADT/StringMap.h"

#include <cstring>

namespace llmc {

namespace {

int32_t formatOf(DType t) {
  return t == DType::F16 ? 1 : t == DType::BF16 ? 2 : 0;
}

/// The tensor's values as floats.
std::vector<float> toFloats(const TensorView &t) {
  std::vector<float> out(static_cast<size_t>(t.numElements()));
  kernels::toFloat(t.data.data(), formatOf(t.dtype), t.numElements(), out.data());
  return out;
}

llvm::Error writeFile(const std::string &path, const std::string &bytes) {
  if (llvm::Error e = llmc::writeOutput(path, [&](llvm::raw_ostream &os) {
        os << bytes;
        return llvm::Error::success();
      })) {
    return fileError(path, llvm::toString(std::move(e)));
  }
  return llvm::Error::success();
}

} // namespace

namespace {

nlohmann::ordered_json configJson(const ModelConfig &c, const std::string &note) {
  return {{"architectures", {"LlamaForCausalLM"}},
          {"model_type", "llama"},
          {"hidden_size", c.hiddenSize},
          {"intermediate_size", c.intermediateSize},
          {"num_hidden_layers", c.numLayers},
          {"num_attention_heads", c.numHeads},
          {"num_key_value_heads", c.numKVHeads},
          {"head_dim", c.headDim},
          {"vocab_size", c.vocabSize},
          {"max_position_embeddings", c.maxPositionEmbeddings},
          {"hidden_act", "silu"},
          {"rms_norm_eps", c.rmsNormEps},
          {"rope_theta", c.ropeTheta},
          {"tie_word_embeddings", c.tieWordEmbeddings},
          {"attention_bias", c.attentionBias},
          {"mlp_bias", c.mlpBias},
          {"bos_token_id", c.bosTokenId},
          {"eos_token_id", c.eosTokenIds.size() == 1
                               ? nlohmann::ordered_json(c.eosTokenIds[0])
                               : nlohmann::ordered_json(c.eosTokenIds)},
          {"llmc_note", note}};
}

/// Writes the tokenizer files and then config.json (last: a directory with
/// config.json is complete).
llvm::Error writeTokenizerAndConfig(const fb::TokenizerT &tok,
                                    const nlohmann::ordered_json &cfg,
                                    const std::string &dir) {
  if (tok.model == fb::TokenizerModel::ByteLevelBPE) {
    auto json = writeByteLevelJson(tok);
    if (!json) {
      return fileError(dir + "/tokenizer.json", llvm::toString(json.takeError()));
    }
    if (auto e = writeFile(dir + "/tokenizer.json", *json)) {
      return e;
    }
  } else if (auto e = writeFile(dir + "/tokenizer.model",
                                writeSentencePieceModel(tok))) {
    return e;
  }
  return writeFile(dir + "/config.json", cfg.dump(2) + "\n");
}

} // namespace

llvm::Error exportSafetensors(const Checkpoint &ckpt, const std::string &dir) {
  if (std::error_code ec = llvm::sys::fs::create_directories(dir)) {
    return fileError(dir, "cannot create: " + ec.message());
  }
  auto tok = ckpt.tokenizer();
  if (!tok) {
    return tok.takeError();
  }
  // Weights first, config last: a directory with config.json is complete.
  std::vector<TensorData> header;
  std::vector<uint64_t> sizes;
  for (const TensorView *t : ckpt.tensors()) {
    header.push_back({t->name, t->dtype, t->shape, {}});
    sizes.push_back(t->data.size());
  }
  std::string weights = dir + "/model.safetensors";
  if (llvm::Error e = llmc::writeOutput(weights, [&](llvm::raw_ostream &os) {
        os << serializeSafetensorsHeader(header, sizes);
        for (const TensorView *t : ckpt.tensors()) {
          os.write(t->data.data(), t->data.size());
        }
        return llvm::Error::success();
      })) {
    return fileError(weights, llvm::toString(std::move(e)));
  }
  return writeTokenizerAndConfig(
      *tok,
      configJson(ckpt.config(), std::string("exported by llmc from a ") +
                                    ckpt.format() + " checkpoint"),
      dir);
}

llvm::Error exportModuleSafetensors(const ModelConfig &config,
                                    std::vector<TensorData> tensors,
                                    const fb::TokenizerT &tokenizer,
                                    const std::string &dir) {
  if (std::error_code ec = llvm::sys::fs::create_directories(dir)) {
    return fileError(dir, "cannot create: " + ec.message());
  }
  ModelConfig c = config;
  auto has = [&](llvm::StringRef suffix) {
    return llvm::any_of(tensors, [&](const TensorData &t) {
      return llvm::StringRef(t.name).ends_with(suffix);
    });
  };
  c.attentionBias = has("_proj.bias") &&
                    (has("self_attn.o_proj.bias") || has("self_attn.q_proj.bias"));
  c.mlpBias = has("mlp.down_proj.bias") || has("mlp.up_proj.bias");
  // Hugging Face's flags give every projection of the kind a bias: missing
  // ones are zeros (exact). A layer whose attention or MLP was removed gets
  // one zero head group or one zero channel (their output is exactly 0).
  llvm::StringMap<size_t> byName;
  for (size_t i = 0; i < tensors.size(); ++i) {
    byName[tensors[i].name] = i;
  }
  const int64_t D = c.hiddenSize, hd = c.headDim;
  auto add = [&](const std::string &name, std::vector<int64_t> shape,
                 float value) {
    if (byName.count(name)) {
      return;
    }
    int64_t n = 1;
    for (int64_t s : shape) {
      n *= s;
    }
    std::vector<char> bytes(n * 4);
    for (int64_t i = 0; i < n; ++i) {
      std::memcpy(bytes.data() + 4 * i, &value, 4);
    }
    byName[name] = tensors.size();
    tensors.push_back({name, DType::F32, std::move(shape), std::move(bytes)});
  };
  auto rows = [&](const std::string &name) -> int64_t {
    auto it = byName.find(name);
    return it == byName.end() ? 0 : tensors[it->second].shape[0];
  };
  for (int64_t l = 0; l < c.numLayers; ++l) {
    std::string p = "model.layers." + std::to_string(l) + ".";
    std::string a = p + "self_attn.", m = p + "mlp.";
    if (!byName.count(a + "q_proj.weight")) {
      add(p + "input_layernorm.weight", {D}, 1.0f);
      add(a + "q_proj.weight", {hd, D}, 0.0f);
      add(a + "k_proj.weight", {hd, D}, 0.0f);
      add(a + "v_proj.weight", {hd, D}, 0.0f);
      add(a + "o_proj.weight", {D, hd}, 0.0f);
    }
    if (!byName.count(m + "gate_proj.weight")) {
      add(p + "post_attention_layernorm.weight", {D}, 1.0f);
      add(m + "gate_proj.weight", {1, D}, 0.0f);
      add(m + "up_proj.weight", {1, D}, 0.0f);
      add(m + "down_proj.weight", {D, 1}, 0.0f);
    }
    if (c.attentionBias) {
      for (const char *proj : {"q_proj", "k_proj", "v_proj", "o_proj"}) {
        add(a + proj + ".bias", {rows(a + proj + ".weight")}, 0.0f);
      }
    }
    if (c.mlpBias) {
      for (const char *proj : {"gate_proj", "up_proj", "down_proj"}) {
        add(m + proj + ".bias", {rows(m + proj + ".weight")}, 0.0f);
      }
    }
  }
  if (llvm::Error e = writeSafetensors(dir + "/model.safetensors", tensors)) {
    return e;
  }
  return writeTokenizerAndConfig(
      tokenizer,
      configJson(c, "written by llmc compile --emit=safetensors: each layer's "
                    "head counts and FFN width are those of its tensors"),
      dir);
}

llvm::Error exportGguf(const Checkpoint &ckpt, const std::string &path,
                       GgmlType matrixType) {
  const ModelConfig &c = ckpt.config();
  auto tok = ckpt.tokenizer();
  if (!tok) {
    return tok.takeError();
  }
  GgufWriter w;
  w.addString("general.architecture", "llama");
  w.addString("general.name", "exported by llmc");
  w.addU32("llama.block_count", static_cast<uint32_t>(c.numLayers));
  w.addU32("llama.context_length", static_cast<uint32_t>(c.maxPositionEmbeddings));
  w.addU32("llama.embedding_length", static_cast<uint32_t>(c.hiddenSize));
  w.addU32("llama.feed_forward_length", static_cast<uint32_t>(c.intermediateSize));
  w.addU32("llama.attention.head_count", static_cast<uint32_t>(c.numHeads));
  w.addU32("llama.attention.head_count_kv", static_cast<uint32_t>(c.numKVHeads));
  w.addU32("llama.rope.dimension_count", static_cast<uint32_t>(c.headDim));
  w.addF32("llama.rope.freq_base", static_cast<float>(c.ropeTheta));
  w.addF32("llama.attention.layer_norm_rms_epsilon",
           static_cast<float>(c.rmsNormEps));
  w.addU32("llama.vocab_size", static_cast<uint32_t>(c.vocabSize));
  const bool bpe = tok->model == fb::TokenizerModel::ByteLevelBPE;
  w.addString("tokenizer.ggml.model", bpe ? "gpt2" : "llama");
  if (bpe) {
    w.addString("tokenizer.ggml.pre", tok->pre_tokenizer == "llama3" ? "llama-bpe"
                                      : tok->pre_tokenizer == "gpt2" ? "gpt-2"
                                                                     : tok->pre_tokenizer);
  }
  w.addStrings("tokenizer.ggml.tokens", tok->pieces);
  if (!bpe) {
    w.addF32s("tokenizer.ggml.scores", tok->scores);
  }
  std::vector<int32_t> types;
  for (fb::TokenType t : tok->types) {
    types.push_back(static_cast<int32_t>(t));
  }
  w.addI32s("tokenizer.ggml.token_type", types);
  if (bpe) {
    w.addStrings("tokenizer.ggml.merges", tok->merges);
  }
  w.addU32("tokenizer.ggml.bos_token_id", static_cast<uint32_t>(c.bosTokenId));
  w.addU32("tokenizer.ggml.eos_token_id",
           static_cast<uint32_t>(c.eosTokenIds.empty() ? tok->eos_id
                                                       : c.eosTokenIds[0]));
  w.addU32("tokenizer.ggml.unknown_token_id", static_cast<uint32_t>(tok->unk_id));
  w.addBool("tokenizer.ggml.add_bos_token", tok->add_bos);
  if (!bpe) {
    w.addBool("tokenizer.ggml.add_space_prefix", tok->add_dummy_prefix);
    w.addBool("tokenizer.ggml.remove_extra_whitespaces",
              tok->remove_extra_whitespaces);
  }

  for (const TensorView *t : ckpt.tensors()) {
    bool ropeRows;
    std::string name = ggufTensorName(t->name, ropeRows);
    if (name.empty()) {
      if (llvm::StringRef(t->name).ends_with(".rotary_emb.inv_freq")) {
        continue; // recomputed from rope_theta
      }
      return fileError(path, "tensor '" + t->name + "' has no GGUF name");
    }
    const bool matrix = t->shape.size() == 2;
    GgmlType type = matrix ? matrixType : GgmlType::F32;
    if (type == GgmlType::Q8_0 && t->shape.back() % 32 != 0) {
      return fileError(path, "tensor '" + t->name + "' has rows of " +
                                 llvm::Twine(t->shape.back()) +
                                 ", not a multiple of Q8_0's block of 32");
    }
    const int64_t hd = c.headDim;
    if (ropeRows && t->shape[0] % hd != 0) {
      return fileError(path, "tensor '" + t->name + "' has " +
                                 llvm::Twine(t->shape[0]) +
                                 " rows, not a multiple of head_dim " +
                                 llvm::Twine(hd));
    }
    w.addTensor(name, type, t->shape, [t, type, ropeRows, hd](std::string &out) {
      std::vector<float> x = toFloats(*t);
      const int64_t rows = t->shape[0];
      const int64_t cols = t->shape.size() == 2 ? t->shape[1] : 1;
      if (ropeRows) {
        // Hugging Face row h*hd + j*hd/2 + i goes to GGUF row h*hd + 2i + j.
        std::vector<float> y(x.size());
        for (int64_t h = 0; h < rows / hd; ++h) {
          for (int64_t i = 0; i < hd / 2; ++i) {
            for (int64_t j = 0; j < 2; ++j) {
              std::memcpy(&y[(h * hd + 2 * i + j) * cols],
                          &x[(h * hd + j * hd / 2 + i) * cols],
                          sizeof(float) * cols);
            }
          }
        }
        x.swap(y);
      }
      if (type == GgmlType::Q8_0) {
        quantizeQ8_0(x.data(), static_cast<int64_t>(x.size()), out);
      } else if (type == GgmlType::F16) {
        for (float v : x) {
          uint16_t h = kernels::floatToHalf(v);
          out.append(reinterpret_cast<const char *>(&h), 2);
        }
      } else {
        out.append(reinterpret_cast<const char *>(x.data()), x.size() * 4);
      }
    });
  }
  return w.write(path);
}

} // namespace llmc
