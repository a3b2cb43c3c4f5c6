// Opens a checkpoint: config.json, then a single or sharded set of safetensors files.
#include "compiler/Checkpoint.h"

#include "compiler/Gguf.h"
#include "compiler/JsonFields.h"
#include "compiler/TokenizerImport.h"

#include "llvm/Support/FileSystem.h"
#include "llvm/Support/Path.h"

#include <nlohmann/json.hpp>

#include <cstdio>
#include <cstring>
#include <set>

namespace llmc {

namespace {

llvm::Expected<nlohmann::json> readJson(const std::string &path) {
  auto buf = llvm::MemoryBuffer::getFile(path, /*IsText=*/true);
  if (!buf) {
    return fileError(path, "cannot open: " + buf.getError().message());
  }
  nlohmann::json j = nlohmann::json::parse((*buf)->getBufferStart(),
                                           (*buf)->getBufferEnd(), nullptr,
                                           /*allow_exceptions=*/false);
  if (j.is_discarded()) {
    return fileError(path, "invalid JSON");
  }
  if (!j.is_object()) {
    return fileError(path, "expected a JSON object");
  }
  return j;
}

} // namespace

namespace {
llvm::Expected<ModelConfig> parseConfigFields(const std::string &path);
} // namespace

bool isConfigPath(llvm::StringRef path) {
  return path.ends_with(".json") && !llvm::sys::fs::is_directory(path);
}

llvm::Expected<ModelConfig> parseConfig(const std::string &path) {
  return withJsonTypeErrors(path, [&] { return parseConfigFields(path); });
}

namespace {
llvm::Expected<ModelConfig> parseConfigFields(const std::string &path) {
  auto jOrErr = readJson(path);
  if (!jOrErr) {
    return jOrErr.takeError();
  }
  const nlohmann::json &j = *jOrErr;
  ModelConfig c;

  bool isLlama = j.value("model_type", std::string()) == "llama";
  if (j.contains("architectures") && j["architectures"].is_array()) {
    for (const auto &a : j["architectures"]) {
      isLlama |= a.is_string() && a.get<std::string>() == "LlamaForCausalLM";
    }
  }
  if (!isLlama) {
    std::string what = j.value("model_type", std::string("(none)"));
    return fileError(path, "unsupported architecture: model_type '" + what +
                               "' (llmc compiles LlamaForCausalLM / llama)");
  }

  auto getInt = [&](const char *key, int64_t &out,
                    std::optional<int64_t> fallback) -> llvm::Error {
    if (!j.contains(key) || j[key].is_null()) {
      if (!fallback) {
        return fileError(path, llvm::Twine("missing required field '") + key +
                                   "'");
      }
      out = *fallback;
      return llvm::Error::success();
    }
    if (!j[key].is_number_integer() || j[key].get<int64_t>() <= 0) {
      return fileError(path, llvm::Twine("field '") + key +
                                 "' must be a positive integer");
    }
    out = j[key].get<int64_t>();
    return llvm::Error::success();
  };
  auto getFloat = [&](const char *key, double &out,
                      double fallback) -> llvm::Error {
    if (!j.contains(key) || j[key].is_null()) {
      out = fallback;
      return llvm::Error::success();
    }
    if (!j[key].is_number() || j[key].get<double>() <= 0) {
      return fileError(path, llvm::Twine("field '") + key +
                                 "' must be a positive number");
    }
    out = j[key].get<double>();
    return llvm::Error::success();
  };

  if (auto e = getInt("hidden_size", c.hiddenSize, std::nullopt)) return e;
  if (auto e = getInt("intermediate_size", c.intermediateSize, std::nullopt)) return e;
  if (auto e = getInt("num_hidden_layers", c.numLayers, std::nullopt)) return e;
  if (auto e = getInt("num_attention_heads", c.numHeads, std::nullopt)) return e;
  if (auto e = getInt("num_key_value_heads", c.numKVHeads, c.numHeads)) return e;
  if (auto e = getInt("vocab_size", c.vocabSize, std::nullopt)) return e;
  if (auto e = getInt("max_position_embeddings", c.maxPositionEmbeddings, 2048)) return e;
  if (c.hiddenSize % c.numHeads != 0 && !j.contains("head_dim")) {
    return fileError(path, "num_attention_heads (" + llvm::Twine(c.numHeads) +
                               ") does not divide hidden_size (" +
                               llvm::Twine(c.hiddenSize) + ")");
  }
  if (auto e = getInt("head_dim", c.headDim, c.hiddenSize / c.numHeads)) return e;
  if (auto e = getFloat("rms_norm_eps", c.rmsNormEps, 1e-6)) return e;
  if (auto e = getFloat("rope_theta", c.ropeTheta, 10000.0)) return e;

  if (c.numHeads % c.numKVHeads != 0) {
    return fileError(path, "num_key_value_heads (" + llvm::Twine(c.numKVHeads) +
                               ") does not divide num_attention_heads (" +
                               llvm::Twine(c.numHeads) + ")");
  }
  if (c.numHeads > c.hiddenSize || c.headDim > c.hiddenSize ||
      c.headDim * c.numHeads != c.hiddenSize) {
    return fileError(path, "head_dim (" + llvm::Twine(c.headDim) +
                               ") x num_attention_heads (" +
                               llvm::Twine(c.numHeads) +
                               ") differs from hidden_size (" +
                               llvm::Twine(c.hiddenSize) + ")");
  }
  if (c.headDim % 2 != 0) {
    return fileError(path, "head_dim " + llvm::Twine(c.headDim) +
                               " is odd; rotary embeddings need it even");
  }
  if (j.contains("hidden_act") && j["hidden_act"] != "silu") {
    return fileError(path, "unsupported hidden_act '" +
                               j["hidden_act"].dump() + "' (only silu)");
  }
  if (j.contains("rope_scaling") && !j["rope_scaling"].is_null()) {
    return fileError(path, "rope_scaling is not supported yet");
  }
  c.attentionBias = j.value("attention_bias", false);
  c.mlpBias = j.value("mlp_bias", false);
  c.tieWordEmbeddings = j.value("tie_word_embeddings", false);
  if (j.contains("bos_token_id") && j["bos_token_id"].is_number_integer()) {
    c.bosTokenId = j["bos_token_id"].get<int64_t>();
  }
  if (j.contains("eos_token_id")) {
    const auto &e = j["eos_token_id"];
    if (e.is_number_integer()) {
      c.eosTokenIds = {e.get<int64_t>()};
    } else if (e.is_array()) {
      c.eosTokenIds.clear();
      for (const auto &v : e) {
        if (v.is_number_integer()) {
          c.eosTokenIds.push_back(v.get<int64_t>());
        }
      }
    }
  }
  c.torchDtype = j.value("torch_dtype", std::string());
  return c;
}
} // namespace

llvm::Expected<std::unique_ptr<Checkpoint>>
Checkpoint::open(const std::string &path, bool allowShapesOnly) {
  auto ckpt = std::make_unique<Checkpoint>();
  std::vector<std::string> shardPaths;
  // A GGUF file by name, or by its magic whatever its name.
  auto isGguf = [&] {
    if (llvm::StringRef(path).ends_with(".gguf")) {
      return !llvm::sys::fs::is_directory(path);
    }
    if (!llvm::sys::fs::is_regular_file(path)) {
      return false;
    }
    char magic[4] = {};
    std::FILE *f = std::fopen(path.c_str(), "rb");
    bool yes = f && std::fread(magic, 1, 4, f) == 4 &&
               std::memcmp(magic, "GGUF", 4) == 0;
    if (f) {
      std::fclose(f);
    }
    return yes;
  };
  if (isGguf()) {
    if (auto e = openGguf(*ckpt, path)) {
      return e;
    }
    return ckpt;
  }
  if (isConfigPath(path)) {
    if (!allowShapesOnly) {
      return fileError(path, "a config alone has no weights (only `llmc "
                             "compile --random-weights` takes one); give "
                             "the checkpoint's directory");
    }
    if (auto e = openShapesOnly(*ckpt, path)) {
      return e;
    }
    return ckpt;
  }
  if (llvm::sys::fs::is_directory(path)) {
    ckpt->dir_ = path;
  } else if (llvm::StringRef(path).ends_with(".safetensors")) {
    if (!llvm::sys::fs::exists(path)) {
      return fileError(path, "no such file");
    }
    ckpt->dir_ = llvm::sys::path::parent_path(path).str();
    if (ckpt->dir_.empty()) {
      ckpt->dir_ = ".";
    }
    shardPaths.push_back(path);
  } else if (!llvm::sys::fs::exists(path)) {
    return fileError(path, "no such file or directory");
  } else {
    return fileError(path, "expected a checkpoint directory, a .safetensors "
                           "file or a .gguf file");
  }

  auto join = [&](llvm::StringRef name) {
    llvm::SmallString<256> p(ckpt->dir_);
    llvm::sys::path::append(p, name);
    return std::string(p);
  };
  auto cfg = parseConfig(join("config.json"));
  if (!cfg) {
    return cfg.takeError();
  }
  ckpt->config_ = *cfg;

  if (shardPaths.empty()) {
    std::string single = join("model.safetensors");
    std::string index = join("model.safetensors.index.json");
    if (llvm::sys::fs::exists(index)) {
      auto jOrErr = readJson(index);
      if (!jOrErr) {
        return jOrErr.takeError();
      }
      const auto &wm = (*jOrErr)["weight_map"];
      if (!wm.is_object()) {
        return fileError(index, "lacks a 'weight_map' object");
      }
      std::set<std::string> seen;
      for (auto it = wm.begin(); it != wm.end(); ++it) {
        if (!it.value().is_string()) {
          return fileError(index, "weight_map entry '" + it.key() +
                                      "' is not a file name");
        }
        std::string shard = it.value().get<std::string>();
        if (seen.insert(shard).second) {
          std::string p = join(shard);
          if (!llvm::sys::fs::exists(p)) {
            return fileError(index, "shard '" + shard + "' (holding '" +
                                        it.key() + "') is missing");
          }
          shardPaths.push_back(p);
        }
      }
      ckpt->indexPath_ = index;
    } else if (llvm::sys::fs::exists(single)) {
      shardPaths.push_back(single);
    } else {
      return fileError(path, "no model.safetensors or "
                             "model.safetensors.index.json");
    }
  }

  for (const std::string &p : shardPaths) {
    auto f = SafetensorsFile::open(p);
    if (!f) {
      return f.takeError();
    }
    for (const TensorView &t : (*f)->tensors()) {
      auto [it, inserted] = ckpt->tensors_.try_emplace(t.name, &t);
      if (!inserted) {
        return fileError(p, "tensor '" + t.name + "' also appears in " +
                                it->second->path);
      }
      ckpt->order_.push_back(&t);
    }
    ckpt->files_.push_back(std::move(*f));
  }
  return ckpt;
}

llvm::Error Checkpoint::openShapesOnly(Checkpoint &ckpt,
                                       const std::string &path) {
  if (!llvm::sys::fs::exists(path)) {
    return fileError(path, "no such file");
  }
  auto cfg = parseConfig(path);
  if (!cfg) {
    return cfg.takeError();
  }
  const ModelConfig &c = *cfg;
  ckpt.config_ = c;
  ckpt.configPath_ = path;
  ckpt.shapesOnly_ = true;
  ckpt.dir_ = llvm::sys::path::parent_path(path).str();
  if (ckpt.dir_.empty()) {
    ckpt.dir_ = ".";
  }
  const DType dtype = c.torchDtype == "float16"    ? DType::F16
                      : c.torchDtype == "bfloat16" ? DType::BF16
                                                   : DType::F32;
  auto add = [&](const std::string &name, std::vector<int64_t> shape) {
    auto t = std::make_unique<TensorView>();
    t->name = name;
    t->dtype = dtype;
    t->shape = std::move(shape);
    t->path = path;
    t->shapesOnly = true;
    ckpt.tensors_[name] = t.get();
    ckpt.order_.push_back(t.get());
    ckpt.owned_.push_back(std::move(t));
  };
  const int64_t D = c.hiddenSize, F = c.intermediateSize, hd = c.headDim;
  const int64_t q = c.numHeads * hd, kv = c.numKVHeads * hd;
  add("model.embed_tokens.weight", {c.vocabSize, D});
  for (int64_t i = 0; i < c.numLayers; ++i) {
    const std::string l = "model.layers." + std::to_string(i) + ".";
    add(l + "input_layernorm.weight", {D});
    const std::pair<const char *, std::vector<int64_t>> attn[] = {
        {"q_proj", {q, D}}, {"k_proj", {kv, D}}, {"v_proj", {kv, D}},
        {"o_proj", {D, q}}};
    for (const auto &[name, shape] : attn) {
      add(l + "self_attn." + name + ".weight", shape);
      if (c.attentionBias) {
        add(l + "self_attn." + name + ".bias", {shape[0]});
      }
    }
    add(l + "post_attention_layernorm.weight", {D});
    const std::pair<const char *, std::vector<int64_t>> mlp[] = {
        {"gate_proj", {F, D}}, {"up_proj", {F, D}}, {"down_proj", {D, F}}};
    for (const auto &[name, shape] : mlp) {
      add(l + "mlp." + name + ".weight", shape);
      if (c.mlpBias) {
        add(l + "mlp." + name + ".bias", {shape[0]});
      }
    }
  }
  add("model.norm.weight", {D});
  if (!c.tieWordEmbeddings) {
    add("lm_head.weight", {c.vocabSize, D});
  }
  return llvm::Error::success();
}

Checkpoint::~Checkpoint() = default;

namespace {
/// The tokenizer of a config compiled alone: LLaMA-2's layout (<unk> 0, <s>
/// 1, </s> 2, the byte pieces <0x00>..<0xFF>), then the word boundary "▁",
/// padded with unused pieces to the config's vocabulary. Any text encodes (as bytes); it exists so that
/// prompts run at the config's shapes.
llvm::Expected<fb::TokenizerT> byteTokenizer(const ModelConfig &c,
                                             const std::string &path) {
  constexpr int64_t kPieces = 3 + 256;
  if (c.vocabSize < kPieces) {
    return fileError(path, "vocab_size " + llvm::Twine(c.vocabSize) +
                               " is below the " + llvm::Twine(kPieces) +
                               " pieces of the built-in byte tokenizer; put "
                               "a tokenizer.model or tokenizer.json beside it");
  }
  if (c.bosTokenId != 1 || c.eosTokenIds.empty() || c.eosTokenIds[0] != 2) {
    return fileError(path, "the built-in byte tokenizer has <s> 1 and </s> "
                           "2, and the config names other ids; put a "
                           "tokenizer.model or tokenizer.json beside it");
  }
  fb::TokenizerT tok;
  auto add = [&](std::string piece, fb::TokenType type) {
    tok.pieces.push_back(std::move(piece));
    tok.scores.push_back(0.0f);
    tok.types.push_back(type);
  };
  add("<unk>", fb::TokenType::Unknown);
  add("<s>", fb::TokenType::Control);
  add("</s>", fb::TokenType::Control);
  for (int b = 0; b < 256; ++b) {
    char name[8];
    std::snprintf(name, sizeof name, "<0x%02X>", b);
    add(name, fb::TokenType::Byte);
  }
  // The word boundary (spaces and the dummy prefix), so text decodes back.
  if (c.vocabSize > kPieces) {
    add("\xE2\x96\x81", fb::TokenType::Normal);
  }
  for (int64_t i = kPieces + 1; i < c.vocabSize; ++i) {
    add("<unused" + std::to_string(i) + ">", fb::TokenType::Unused);
  }
  tok.unk_id = 0;
  tok.bos_id = 1;
  tok.eos_id = 2;
  return tok;
}
} // namespace

std::vector<std::string> Checkpoint::sourcePaths() const {
  if (gguf_) {
    return {gguf_->path()};
  }
  std::vector<std::string> out{shapesOnly_ ? configPath_ : dir_ + "/config.json"};
  if (!indexPath_.empty()) {
    out.push_back(indexPath_);
  }
  for (const auto &f : files_) {
    out.push_back(f->path());
  }
  for (const char *name : {"tokenizer.model", "tokenizer.json"}) {
    std::string p = dir_ + "/" + name;
    if (llvm::sys::fs::exists(p)) {
      out.push_back(p);
      break;
    }
  }
  return out;
}

uint64_t Checkpoint::sourceBytes() const {
  uint64_t n = 0;
  if (gguf_) {
    for (const GgufTensor &t : gguf_->tensors()) {
      n += t.data.size();
    }
    return n;
  }
  for (const TensorView *t : order_) {
    n += t->data.size();
  }
  return n;
}

llvm::Expected<fb::TokenizerT> Checkpoint::tokenizer() const {
  if (gguf_) {
    return readGgufTokenizer(*gguf_);
  }
  if (shapesOnly_ && !llvm::sys::fs::exists(dir_ + "/tokenizer.model") &&
      !llvm::sys::fs::exists(dir_ + "/tokenizer.json")) {
    return byteTokenizer(config_, configPath_);
  }
  auto tok = readTokenizer(dir_);
  if (tok && tok->model == fb::TokenizerModel::ByteLevelBPE) {
    // tokenizer.json does not say which tokens are BOS and EOS; config.json
    // does.
    const auto n = static_cast<int64_t>(tok->pieces.size());
    int64_t eos = config_.eosTokenIds.empty() ? -1 : config_.eosTokenIds[0];
    for (int64_t id : {config_.bosTokenId, eos}) {
      if (id < 0 || id >= n) {
        return fileError(dir_ + "/config.json",
                         "bos/eos token id " + llvm::Twine(id) +
                             " is outside the tokenizer's " + llvm::Twine(n) +
                             " tokens");
      }
    }
    tok->bos_id = static_cast<int32_t>(config_.bosTokenId);
    tok->eos_id = static_cast<int32_t>(eos);
  }
  return tok;
}

const TensorView *Checkpoint::lookup(llvm::StringRef name) const {
  auto it = tensors_.find(name);
  return it == tensors_.end() ? nullptr : it->second;
}

llvm::Expected<const TensorView *>
Checkpoint::requireRank(llvm::StringRef name, size_t rank) const {
  const TensorView *t = lookup(name);
  if (!t) {
    return require(name, {}); // the missing-tensor error
  }
  if (t->shape.size() != rank) {
    return fileError(t->path, "tensor '" + name + "' has rank " +
                                  llvm::Twine(t->shape.size()) + ", expected " +
                                  llvm::Twine(rank));
  }
  return require(name, t->shape);
}

llvm::Expected<const TensorView *>
Checkpoint::require(llvm::StringRef name, llvm::ArrayRef<int64_t> shape) const {
  const TensorView *t = lookup(name);
  std::string where =
      !indexPath_.empty() ? indexPath_
      : files_.size() == 1 ? files_.front()->path()
                           : dir_;
  auto fmt = [](llvm::ArrayRef<int64_t> s) {
    std::string out = "[";
    for (size_t i = 0; i < s.size(); ++i) {
      out += (i ? ", " : "") + std::to_string(s[i]);
    }
    return out + "]";
  };
  if (!t) {
    return fileError(where, "missing tensor '" + name + "'");
  }
  if (llvm::ArrayRef<int64_t>(t->shape) != shape) {
    return fileError(t->path, "tensor '" + name + "' has shape " +
                                  fmt(t->shape) + ", expected " + fmt(shape) +
                                  (gguf_ ? " (from the GGUF metadata and the "
                                           "layer's attn_q, attn_k and ffn_gate)"
                                         : " (from config.json and the layer's "
                                           "q_proj, k_proj and gate_proj)"));
  }
  if (t->dtype != DType::F32 && t->dtype != DType::F16 &&
      t->dtype != DType::BF16) {
    return fileError(t->path, "tensor '" + name + "' has unsupported dtype " +
                                  dtypeName(t->dtype) +
                                  " (llmc reads F32, F16 and BF16 weights)");
  }
  return t;
}

} // namespace llmc
