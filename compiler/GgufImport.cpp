// A GGUF file as a Checkpoint: llama hyper-parameters from its metadata,
// tensors renamed to Hugging Face names, block formats dequantized to f32,
// llama.cpp's interleaved-RoPE row order of q/k undone; and its tokenizer.
#include "compiler/Checkpoint.h"
#include "compiler/Gguf.h"
#include "compiler/TokenizerImport.h"

#include "runtime/tokenizer/bytelevel.h"

#include "llvm/ADT/StringExtras.h"
#include "llvm/Support/FileSystem.h"
#include "llvm/Support/Path.h"

#include <cstring>

namespace llmc {


llvm::Error Checkpoint::openGguf(Checkpoint &ckpt, const std::string &path) {
  if (!llvm::sys::fs::exists(path)) {
    return fileError(path, "no such file");
  }
  auto opened = GgufFile::open(path);
  if (!opened) {
    return opened.takeError();
  }
  ckpt.gguf_ = std::move(*opened);
  const GgufFile &g = *ckpt.gguf_;
  ckpt.dir_ = llvm::sys::path::parent_path(path).str();
  if (ckpt.dir_.empty()) {
    ckpt.dir_ = ".";
  }

  auto arch = g.getString("general.architecture", std::nullopt);
  if (!arch) {
    return arch.takeError();
  }
  if (*arch != "llama") {
    return fileError(path, "unsupported architecture '" + *arch +
                               "' (llmc imports general.architecture = llama)");
  }
  ModelConfig &c = ckpt.config_;
  struct IntField {
    const char *key;
    int64_t *out;
    std::optional<int64_t> fallback;
  };
  for (const IntField &f : {
           IntField{"llama.block_count", &c.numLayers, std::nullopt},
           IntField{"llama.embedding_length", &c.hiddenSize, std::nullopt},
           IntField{"llama.feed_forward_length", &c.intermediateSize, std::nullopt},
           IntField{"llama.attention.head_count", &c.numHeads, std::nullopt},
           IntField{"llama.context_length", &c.maxPositionEmbeddings, 2048},
       }) {
    auto v = g.getInt(f.key, f.fallback);
    if (!v) {
      return v.takeError();
    }
    if (*v <= 0) {
      return fileError(path, llvm::Twine("metadata '") + f.key +
                                 "' must be positive");
    }
    *f.out = *v;
  }
  auto kv = g.getInt("llama.attention.head_count_kv", c.numHeads);
  auto keyLen = g.getInt("llama.attention.key_length",
                         c.hiddenSize / c.numHeads);
  auto valLen = g.getInt("llama.attention.value_length",
                         keyLen ? *keyLen : 0);
  if (!kv) return kv.takeError();
  if (!keyLen) return keyLen.takeError();
  if (!valLen) return valLen.takeError();
  c.numKVHeads = *kv;
  c.headDim = *keyLen;
  // Bounded before any product of them can overflow.
  if (c.numHeads > c.hiddenSize || c.headDim <= 0 || c.headDim > c.hiddenSize) {
    return fileError(path, "attention head_count " + llvm::Twine(c.numHeads) +
                               " / key_length " + llvm::Twine(c.headDim) +
                               " do not fit embedding_length " +
                               llvm::Twine(c.hiddenSize));
  }
  if (c.numKVHeads <= 0 || c.numHeads % c.numKVHeads != 0) {
    return fileError(path, "llama.attention.head_count_kv (" +
                               llvm::Twine(c.numKVHeads) +
                               ") does not divide head_count (" +
                               llvm::Twine(c.numHeads) + ")");
  }
  if (*valLen != c.headDim || c.headDim * c.numHeads != c.hiddenSize ||
      c.headDim % 2 != 0) {
    return fileError(path, "attention key/value length " +
                               llvm::Twine(c.headDim) + "/" +
                               llvm::Twine(*valLen) + " x " +
                               llvm::Twine(c.numHeads) +
                               " heads does not fit embedding_length " +
                               llvm::Twine(c.hiddenSize) +
                               " (llmc needs equal, even head sizes)");
  }
  auto ropeDims = g.getInt("llama.rope.dimension_count", c.headDim);
  if (!ropeDims) return ropeDims.takeError();
  if (*ropeDims != c.headDim) {
    return fileError(path, "llama.rope.dimension_count " +
                               llvm::Twine(*ropeDims) + " differs from the head "
                               "size " + llvm::Twine(c.headDim) +
                               " (partial rotary embeddings are not supported)");
  }
  auto scaling = g.getString("llama.rope.scaling.type", std::string("none"));
  if (!scaling) return scaling.takeError();
  if (*scaling != "none" || g.tensor("rope_freqs.weight")) {
    return fileError(path, "rope scaling ('" + *scaling +
                               "' or a rope_freqs tensor) is not supported yet");
  }
  auto experts = g.getInt("llama.expert_count", 0);
  if (!experts) return experts.takeError();
  if (*experts > 0) {
    return fileError(path, "mixture-of-experts models (llama.expert_count " +
                               llvm::Twine(*experts) + ") are not supported");
  }
  auto eps = g.getFloat("llama.attention.layer_norm_rms_epsilon", std::nullopt);
  auto theta = g.getFloat("llama.rope.freq_base", 10000.0);
  if (!eps) return eps.takeError();
  if (!theta) return theta.takeError();
  if (!(*eps > 0) || !(*theta > 0)) {
    return fileError(path, "layer_norm_rms_epsilon and rope.freq_base must be "
                           "positive");
  }
  c.rmsNormEps = *eps;
  c.ropeTheta = *theta;
  auto bos = g.getInt("tokenizer.ggml.bos_token_id", 1);
  auto eos = g.getInt("tokenizer.ggml.eos_token_id", 2);
  if (!bos) return bos.takeError();
  if (!eos) return eos.takeError();
  c.bosTokenId = *bos;
  c.eosTokenIds = {*eos};

  const GgufTensor *embd = g.tensor("token_embd.weight");
  if (!embd || embd->dims.size() != 2) {
    return fileError(path, "missing 2-D tensor 'token_embd.weight'");
  }
  c.vocabSize = embd->dims[1];
  auto vocab = g.getInt("llama.vocab_size", c.vocabSize);
  if (!vocab) return vocab.takeError();
  if (*vocab != c.vocabSize) {
    return fileError(path, "llama.vocab_size " + llvm::Twine(*vocab) +
                               " differs from token_embd.weight's " +
                               llvm::Twine(c.vocabSize) + " rows");
  }
  c.tieWordEmbeddings = g.tensor("output.weight") == nullptr;
  c.attentionBias = g.tensor("blk.0.attn_q.bias") != nullptr;
  c.mlpBias = g.tensor("blk.0.ffn_up.bias") != nullptr;

  for (const GgufTensor &t : g.tensors()) {
    bool ropeRows;
    std::string name = huggingFaceTensorName(t.name, ropeRows);
    if (name.empty()) {
      return fileError(path, "tensor '" + t.name +
                                 "' has no counterpart in a llama model");
    }
    auto view = std::make_unique<TensorView>();
    view->name = name;
    view->shape = t.shape();
    view->path = path;
    const int64_t rows = view->shape[0];
    const int64_t cols = view->shape.size() == 2 ? view->shape[1] : 1;
    if (view->shape.size() > 2) {
      return fileError(path, "tensor '" + t.name + "' has " +
                                 llvm::Twine(view->shape.size()) +
                                 " dimensions; llama weights have 1 or 2");
    }
    if (ropeRows && rows % c.headDim != 0) {
      return fileError(path, "tensor '" + t.name + "' has " + llvm::Twine(rows) +
                                 " rows, not a multiple of the head size " +
                                 llvm::Twine(c.headDim));
    }
    const auto type = static_cast<GgmlType>(t.type);
    const bool plain = type == GgmlType::F32 || type == GgmlType::F16 ||
                       type == GgmlType::BF16;
    view->dtype = type == GgmlType::F16    ? DType::F16
                  : type == GgmlType::BF16 ? DType::BF16
                                           : DType::F32;
    if (plain && !ropeRows) {
      view->data = t.data; // zero copy
      view->file = g.buffer();
    } else {
      const size_t elem = dtypeSize(view->dtype);
      const size_t bytes = static_cast<size_t>(rows * cols) * elem;
      std::shared_ptr<llvm::WritableMemoryBuffer> buf =
          llvm::WritableMemoryBuffer::getNewUninitMemBuffer(bytes, name);
      if (!buf) {
        return fileError(path, "out of memory converting tensor '" + t.name + "'");
      }
      char *dst = buf->getBufferStart();
      std::vector<float> tmp;
      const char *src = t.data.data();
      if (!plain) {
        tmp.resize(static_cast<size_t>(rows * cols));
        dequantize(t, tmp.data());
        src = reinterpret_cast<const char *>(tmp.data());
      }
      const size_t rowBytes = static_cast<size_t>(cols) * elem;
      if (ropeRows) {
        // GGUF row h*hd + 2i + j holds Hugging Face row h*hd + j*hd/2 + i.
        const int64_t hd = c.headDim;
        for (int64_t h = 0; h < rows / hd; ++h) {
          for (int64_t i = 0; i < hd / 2; ++i) {
            for (int64_t j = 0; j < 2; ++j) {
              std::memcpy(dst + (h * hd + j * hd / 2 + i) * rowBytes,
                          src + (h * hd + 2 * i + j) * rowBytes, rowBytes);
            }
          }
        }
      } else {
        std::memcpy(dst, src, bytes);
      }
      view->data = llvm::ArrayRef<char>(dst, bytes);
      view->file = std::move(buf);
    }
    auto [it, inserted] = ckpt.tensors_.try_emplace(view->name, view.get());
    if (!inserted) {
      return fileError(path, "two tensors map to '" + view->name + "'");
    }
    ckpt.order_.push_back(view.get());
    ckpt.owned_.push_back(std::move(view));
  }
  return llvm::Error::success();
}

llvm::Expected<fb::TokenizerT> readGgufTokenizer(const GgufFile &g) {
  const std::string &path = g.path();
  auto model = g.getString("tokenizer.ggml.model", std::nullopt);
  if (!model) {
    return model.takeError();
  }
  const GgufValue *tokens = g.get("tokenizer.ggml.tokens");
  if (!tokens || !tokens->isArray() || tokens->elemType != GgufType::String ||
      tokens->strings.empty()) {
    return fileError(path, "metadata 'tokenizer.ggml.tokens' is missing or "
                           "not an array of strings");
  }
  const size_t n = tokens->strings.size();
  fb::TokenizerT tok;
  tok.pieces = tokens->strings;
  tok.scores.assign(n, 0.0f);
  tok.types.assign(n, fb::TokenType::Normal);
  if (const GgufValue *types = g.get("tokenizer.ggml.token_type")) {
    if (!types->isArray() || types->ints.size() != n) {
      return fileError(path, "metadata 'tokenizer.ggml.token_type' does not "
                             "have one integer per token");
    }
    for (size_t i = 0; i < n; ++i) {
      int64_t t = types->ints[i];
      if (t < 1 || t > 6) {
        return fileError(path, "token " + llvm::Twine(i) + " has unknown type " +
                                   llvm::Twine(t));
      }
      tok.types[i] = static_cast<fb::TokenType>(t);
    }
  }
  if (const GgufValue *scores = g.get("tokenizer.ggml.scores")) {
    if (!scores->isArray() || scores->floats.size() != n) {
      return fileError(path, "metadata 'tokenizer.ggml.scores' does not have "
                             "one float per token");
    }
    for (size_t i = 0; i < n; ++i) {
      tok.scores[i] = static_cast<float>(scores->floats[i]);
    }
  }
  struct IdField {
    const char *key;
    int32_t *out;
    int64_t fallback;
  };
  for (const IdField &f : {IdField{"tokenizer.ggml.unknown_token_id", &tok.unk_id, 0},
                           IdField{"tokenizer.ggml.bos_token_id", &tok.bos_id, 1},
                           IdField{"tokenizer.ggml.eos_token_id", &tok.eos_id, 2}}) {
    auto v = g.getInt(f.key, f.fallback);
    if (!v) {
      return v.takeError();
    }
    if (*v < 0 || *v >= static_cast<int64_t>(n)) {
      return fileError(path, llvm::Twine("metadata '") + f.key + "' (" +
                                 llvm::Twine(*v) + ") is not a token id");
    }
    *f.out = static_cast<int32_t>(*v);
  }
  auto flag = [&](const char *key, bool fallback) -> llvm::Expected<bool> {
    const GgufValue *v = g.get(key);
    if (!v) {
      return fallback;
    }
    if (v->type != GgufType::Bool) {
      return fileError(path, llvm::Twine("metadata '") + key + "' is not a bool");
    }
    return v->i != 0;
  };
  auto addBos = flag("tokenizer.ggml.add_bos_token", true);
  if (!addBos) {
    return addBos.takeError();
  }
  tok.add_bos = *addBos;

  if (*model == "llama") {
    auto prefix = flag("tokenizer.ggml.add_space_prefix", true);
    if (!prefix) {
      return prefix.takeError();
    }
    auto extraWs = flag("tokenizer.ggml.remove_extra_whitespaces", false);
    if (!extraWs) {
      return extraWs.takeError();
    }
    tok.model = fb::TokenizerModel::SentencePiece;
    tok.add_dummy_prefix = *prefix;
    tok.remove_extra_whitespaces = *extraWs;
    tok.byte_fallback = true;
    return tok;
  }
  if (*model != "gpt2") {
    return fileError(path, "unsupported tokenizer.ggml.model '" + *model +
                               "' (llmc reads llama and gpt2)");
  }
  tok.model = fb::TokenizerModel::ByteLevelBPE;
  const GgufValue *merges = g.get("tokenizer.ggml.merges");
  // No merges (gguf-py omits an empty array) leaves a byte-level vocabulary.
  if (merges && (!merges->isArray() || (merges->elemType != GgufType::String &&
                                        merges->size() != 0))) {
    return fileError(path, "metadata 'tokenizer.ggml.merges' is not an array "
                           "of strings");
  }
  if (merges) {
    for (const std::string &m : merges->strings) {
      if (m.find(' ') == std::string::npos) {
        return fileError(path, "malformed merge '" + m + "'");
      }
    }
    tok.merges = merges->strings;
  }
  auto pre = g.getString("tokenizer.ggml.pre", std::string("default"));
  if (!pre) {
    return pre.takeError();
  }
  // llama.cpp's names for the pre-tokenizers llmc implements.
  if (*pre == "smollm") {
    tok.pre_tokenizer = "smollm";
  } else if (*pre == "llama-bpe" || *pre == "llama3") {
    tok.pre_tokenizer = "llama3";
  } else if (*pre == "gpt-2" || *pre == "gpt2") {
    tok.pre_tokenizer = "gpt2";
  } else if (*pre == "default") {
    // llama.cpp's fallback is a pipeline of its own, not GPT-2's expression
    // (and files from before the key existed were often Llama-3's).
    return fileError(path, "the GGUF does not say which pre-tokenizer its BPE "
                           "vocabulary needs (tokenizer.ggml.pre is missing "
                           "or 'default'); llmc implements gpt-2, smollm and "
                           "llama-bpe");
  } else {
    return fileError(path, "unsupported tokenizer.ggml.pre '" + *pre +
                               "' (llmc implements gpt-2, smollm and llama-bpe)");
  }
  tok.ignore_merges = tok.pre_tokenizer == "llama3";
  tok.add_dummy_prefix = false;
  tok.remove_extra_whitespaces = false;
  tok.byte_fallback = false;
  return tok;
}

} // namespace llmc
