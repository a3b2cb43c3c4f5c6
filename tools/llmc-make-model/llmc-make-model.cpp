// llmc-make-model: writes a Hugging Face LLaMA checkpoint with deterministic random weights at preset shapes.
#include "compiler/Safetensors.h"
#include "compiler/SafetensorsWriter.h"
#include "compiler/TokenizerImport.h"
#include "runtime/tokenizer/bytelevel.h"
#include "runtime/kernels/kernels.h"

#include "llvm/Support/CommandLine.h"
#include "llvm/Support/FileSystem.h"
#include "llvm/Support/InitLLVM.h"
#include "llvm/Support/Path.h"
#include "llvm/Support/WithColor.h"
#include "llvm/Support/raw_ostream.h"

#include <nlohmann/json.hpp>

#include <cmath>
#include <cstdio>
#include <cstring>
#include <map>
#include <unistd.h>

using namespace llvm;

namespace {

/// Pieces of the built-in tokenizer (see builtinTokenizer).
constexpr int64_t kBuiltinVocab = 3 + 256 + 1 + 62 + 12;

struct Preset {
  const char *name;
  int64_t hidden, ffn, layers, heads, kvHeads, vocab, maxPos;
  bool tied;
  const char *what;
};

const Preset kPresets[] = {
    {"tinyllama-1.1b", 2048, 5632, 22, 32, 4, 32000, 2048, false,
     "TinyLlama-1.1B shapes"},
    {"llama2-7b", 4096, 11008, 32, 32, 32, 32000, 4096, false,
     "LLaMA-2-7B shapes"},
    {"small", 256, 688, 2, 8, 4, 32000, 512, false,
     "2 layers at hidden 256 with LLaMA-2's vocabulary (tests)"},
    {"tiny", 64, 160, 3, 4, 2, kBuiltinVocab, 128, false,
     "3 layers at hidden 64 with the built-in byte tokenizer (tests)"},
};

cl::opt<std::string> preset("preset",
                            cl::desc("Shapes: tinyllama-1.1b, llama2-7b, "
                                     "small or tiny"),
                            cl::value_desc("name"), cl::Required);
cl::opt<std::string> outDir("o", cl::desc("Checkpoint directory to create"),
                            cl::value_desc("dir"), cl::Required);
cl::opt<std::string> dtype("dtype", cl::desc("f16, bf16 or f32 (default f16)"),
                           cl::init("f16"));
cl::opt<uint64_t> seed("seed", cl::desc("Random seed (default 1)"),
                       cl::init(1));
cl::opt<std::string> tokenizerPath(
    "tokenizer",
    cl::desc("tokenizer.model to copy beside the weights, 'builtin' for a "
             "small SentencePiece BPE model written by this tool (byte "
             "fallback; the default of --preset tiny), or 'builtin-bpe' for "
             "a byte-level BPE tokenizer.json of the same size. Default: "
             "LLaMA-2's 32000-piece tokenizer in "
             "../shared/models/llama2-tokenizer"),
    cl::value_desc("file|builtin|builtin-bpe"), cl::init(""));
cl::opt<std::string> layerShapes(
    "layer-shapes",
    cl::desc("Per-layer shapes, as a pruned checkpoint has them: "
             "HEADS:KV_HEADS:FFN for each layer, comma-separated (head_dim "
             "stays the preset's)"),
    cl::value_desc("h:kv:ffn,..."), cl::init(""));
cl::opt<bool> attentionBias("attention-bias",
                            cl::desc("Give q/k/v/o_proj biases "
                                     "(config attention_bias)"),
                            cl::init(false));
cl::opt<bool> configOnly(
    "config-only",
    cl::desc("Write config.json and the tokenizer but no weights (for "
             "`llmc compile DIR/config.json --random-weights`)"),
    cl::init(false));
cl::opt<bool> mlpBias("mlp-bias",
                      cl::desc("Give gate/up/down_proj biases (config mlp_bias)"),
                      cl::init(false));

int fail(const Twine &m) {
  WithColor::error(errs(), "llmc-make-model") << m << "\n";
  return 1;
}

/// Deterministic uniform values with standard deviation `std`.
class Rng {
public:
  explicit Rng(uint64_t s) : state_(s * 0x9E3779B97F4A7C15ull + 1) {}
  float next(float std) {
    state_ ^= state_ << 13;
    state_ ^= state_ >> 7;
    state_ ^= state_ << 17;
    // uniform in [-sqrt(3), sqrt(3)) has unit variance
    float u = static_cast<float>(state_ >> 40) * (1.0f / 16777216.0f);
    return (2.0f * u - 1.0f) * 1.7320508f * std;
  }

private:
  uint64_t state_;
};

struct Spec {
  std::string name;
  std::vector<int64_t> shape;
  bool norm;
};

struct LayerShape {
  int64_t heads, kvHeads, ffn;
};

/// A small SentencePiece BPE model: <unk>, <s>, </s>, the 256 byte pieces
/// (byte fallback), the word boundary, letters and digits, and a few
/// merges; add_dummy_prefix and whitespace clean-up as LLaMA's. The
/// sentencepiece library loads it, so tests compare against it.
llmc::fb::TokenizerT builtinTokenizer() {
  llmc::fb::TokenizerT tok;
  auto add = [&](const std::string &text, float score, llmc::fb::TokenType t) {
    tok.pieces.push_back(text);
    tok.scores.push_back(score);
    tok.types.push_back(t);
  };
  using TT = llmc::fb::TokenType;
  add("<unk>", 0, TT::Unknown);
  add("<s>", 0, TT::Control);
  add("</s>", 0, TT::Control);
  for (int b = 0; b < 256; ++b) {
    char buf[8];
    std::snprintf(buf, sizeof buf, "<0x%02X>", b);
    add(buf, 0, TT::Byte);
  }
  add("\xE2\x96\x81", -1, TT::Normal); // U+2581, SentencePiece's space
  std::string chars = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789";
  for (char c : chars) {
    add(std::string(1, c), -2, TT::Normal);
  }
  float score = 0;
  for (const char *m : {"th", "he", "the", "in", "an", "er", "on", "at", "en",
                        "nd", "ou", "ed"}) {
    add(m, score -= 0.5f, TT::Normal);
  }
  tok.unk_id = 0;
  tok.bos_id = 1;
  tok.eos_id = 2;
  tok.add_dummy_prefix = true;
  tok.remove_extra_whitespaces = true;
  tok.byte_fallback = true;
  return tok;
}

/// A small byte-level BPE tokenizer (GPT-2 style, SmolLM's pre-tokenizer)
/// with the same number of tokens as builtinTokenizer: three special
/// tokens, the 256 byte symbols, and merges learned greedily from a fixed
/// English text until the vocabulary is full.
llmc::fb::TokenizerT builtinByteLevelTokenizer() {
  llmc::fb::TokenizerT tok;
  tok.model = llmc::fb::TokenizerModel::ByteLevelBPE;
  tok.pre_tokenizer = "smollm";
  tok.add_bos = false; // tokenizer.json's ByteLevel post-processor adds none
  tok.add_dummy_prefix = false;
  tok.remove_extra_whitespaces = false;
  tok.byte_fallback = false;
  using TT = llmc::fb::TokenType;
  for (const char *s : {"<|endoftext|>", "<s>", "</s>"}) {
    tok.pieces.push_back(s);
    tok.types.push_back(TT::Control);
  }
  for (int b = 0; b < 256; ++b) {
    tok.pieces.push_back(llmc::bytelevel::mapBytes(std::string(1, static_cast<char>(b))));
    tok.types.push_back(TT::Normal);
  }
  // Words of the text, as sequences of mapped symbols.
  const std::string text =
      "Once upon a time there was a little girl named Lily. She liked to play "
      "in the garden with her cat and her brother. One day the sun was hot and "
      "they went to the park to see the ducks on the pond and then went home.";
  std::vector<std::vector<std::string>> words;
  for (std::string_view w : llmc::bytelevel::preTokenize(
           text, llmc::bytelevel::PreTokenizer::SmolLM)) {
    std::vector<std::string> syms;
    for (char c : w) {
      syms.push_back(llmc::bytelevel::mapBytes(std::string(1, c)));
    }
    words.push_back(syms);
  }
  while (static_cast<int64_t>(tok.pieces.size()) < kBuiltinVocab) {
    std::map<std::pair<std::string, std::string>, int> counts;
    for (const auto &w : words) {
      for (size_t i = 1; i < w.size(); ++i) {
        counts[{w[i - 1], w[i]}]++;
      }
    }
    if (counts.empty()) {
      break;
    }
    auto best = counts.begin();
    for (auto it = counts.begin(); it != counts.end(); ++it) {
      if (it->second > best->second) {
        best = it; // ties: the first pair in order
      }
    }
    const auto [a, b] = best->first;
    tok.merges.push_back(a + " " + b);
    tok.pieces.push_back(a + b);
    tok.types.push_back(TT::Normal);
    for (auto &w : words) {
      std::vector<std::string> merged;
      for (size_t i = 0; i < w.size(); ++i) {
        if (i + 1 < w.size() && w[i] == a && w[i + 1] == b) {
          merged.push_back(a + b);
          ++i;
        } else {
          merged.push_back(w[i]);
        }
      }
      w.swap(merged);
    }
  }
  tok.scores.assign(tok.pieces.size(), 0.0f);
  tok.unk_id = 0;
  tok.bos_id = 1;
  tok.eos_id = 2;
  return tok;
}

} // namespace

int main(int argc, char **argv) {
  InitLLVM y(argc, argv);
  cl::ParseCommandLineOptions(
      argc, argv,
      "llmc-make-model: a LLaMA checkpoint with random weights, for "
      "benchmarks\n\n"
      "  llmc-make-model --preset tinyllama-1.1b -o /tmp/tinyllama\n");
  const Preset *p = nullptr;
  for (const Preset &q : kPresets) {
    if (preset == q.name) {
      p = &q;
    }
  }
  if (!p) {
    return fail("unknown preset '" + preset +
                "' (tinyllama-1.1b, llama2-7b, small, tiny)");
  }
  llmc::DType dt;
  if (dtype == "f16") {
    dt = llmc::DType::F16;
  } else if (dtype == "bf16") {
    dt = llmc::DType::BF16;
  } else if (dtype == "f32") {
    dt = llmc::DType::F32;
  } else {
    return fail("--dtype must be f16, bf16 or f32");
  }
  std::string tokenizer = tokenizerPath;
  if (tokenizer.empty()) {
    tokenizer = std::string(p->name) == "tiny"
                    ? "builtin"
                    : LLMC_SHARED_DIR "/models/llama2-tokenizer/tokenizer.model";
  }
  const bool builtinBpe = tokenizer == "builtin-bpe";
  const bool builtin = tokenizer == "builtin" || builtinBpe;
  if (builtin != (p->vocab == kBuiltinVocab)) {
    return fail(builtin ? "the built-in tokenizer has " +
                              Twine(kBuiltinVocab) + " pieces; preset '" +
                              p->name + "' needs " + Twine(p->vocab)
                        : Twine("preset 'tiny' takes the built-in tokenizer"));
  }
  if (!builtin && !sys::fs::exists(tokenizer)) {
    return fail(tokenizer + ": no such file (pass --tokenizer FILE, a "
                "SentencePiece tokenizer.model with 32000 pieces)");
  }
  const int64_t hd = p->hidden / p->heads;
  std::vector<LayerShape> layers(p->layers, {p->heads, p->kvHeads, p->ffn});
  if (!layerShapes.empty()) {
    layers.clear();
    SmallVector<StringRef> items;
    StringRef(layerShapes).split(items, ',');
    for (StringRef item : items) {
      SmallVector<StringRef, 3> parts;
      item.split(parts, ':');
      LayerShape l{};
      if (parts.size() != 3 || parts[0].getAsInteger(10, l.heads) ||
          parts[1].getAsInteger(10, l.kvHeads) ||
          parts[2].getAsInteger(10, l.ffn) || l.heads <= 0 || l.kvHeads <= 0 ||
          l.ffn <= 0 || l.heads % l.kvHeads != 0) {
        return fail("--layer-shapes: '" + item +
                    "' is not HEADS:KV_HEADS:FFN with positive numbers and "
                    "KV_HEADS dividing HEADS");
      }
      layers.push_back(l);
    }
  }
  if (std::error_code ec = sys::fs::create_directories(outDir)) {
    return fail(outDir + ": " + ec.message());
  }

  std::vector<Spec> specs = {{"model.embed_tokens.weight", {p->vocab, p->hidden}, false}};
  for (size_t l = 0; l < layers.size(); ++l) {
    std::string q = "model.layers." + std::to_string(l) + ".";
    const int64_t D = p->hidden, Q = layers[l].heads * hd,
                  K = layers[l].kvHeads * hd, F = layers[l].ffn;
    auto linear = [&](const std::string &name, int64_t out, int64_t in,
                      bool bias) {
      specs.push_back({q + name + ".weight", {out, in}, false});
      if (bias) {
        specs.push_back({q + name + ".bias", {out}, false});
      }
    };
    specs.push_back({q + "input_layernorm.weight", {D}, true});
    linear("self_attn.q_proj", Q, D, attentionBias);
    linear("self_attn.k_proj", K, D, attentionBias);
    linear("self_attn.v_proj", K, D, attentionBias);
    linear("self_attn.o_proj", D, Q, attentionBias);
    specs.push_back({q + "post_attention_layernorm.weight", {D}, true});
    linear("mlp.gate_proj", F, D, mlpBias);
    linear("mlp.up_proj", F, D, mlpBias);
    linear("mlp.down_proj", D, F, mlpBias);
  }
  specs.push_back({"model.norm.weight", {p->hidden}, true});
  if (!p->tied) {
    specs.push_back({"lm_head.weight", {p->vocab, p->hidden}, false});
  }

  // Header first (offsets are known from the shapes), then the data,
  // generated tensor by tensor so a 7B model never sits in memory.
  std::vector<llmc::TensorData> headerOnly;
  uint64_t total = 0;
  for (const Spec &s : specs) {
    llmc::TensorData t{s.name, dt, s.shape, {}};
    headerOnly.push_back(t);
    int64_t n = 1;
    for (int64_t d : s.shape) {
      n *= d;
    }
    total += static_cast<uint64_t>(n) * llmc::dtypeSize(dt);
  }
  std::string header = llmc::serializeSafetensorsHeader(headerOnly, [&] {
    std::vector<uint64_t> sizes;
    for (const Spec &s : specs) {
      int64_t n = 1;
      for (int64_t d : s.shape) {
        n *= d;
      }
      sizes.push_back(static_cast<uint64_t>(n) * llmc::dtypeSize(dt));
    }
    return sizes;
  }());

  // --config-only: the shapes and the tokenizer, for `llmc compile
  // config.json --random-weights`.
  if (!configOnly) {
    std::string path = outDir + "/model.safetensors";
    std::string tmp = path + ".tmp" + std::to_string(::getpid());
    std::FILE *f = std::fopen(tmp.c_str(), "wb");
    if (!f) {
      return fail(tmp + ": " + std::strerror(errno));
    }
    bool ok = std::fwrite(header.data(), 1, header.size(), f) == header.size();
    Rng rng(seed);
    std::vector<char> chunk;
    uint64_t written = 0;
    for (size_t i = 0; ok && i < specs.size(); ++i) {
      int64_t n = 1;
      for (int64_t d : specs[i].shape) {
        n *= d;
      }
      const int64_t step = 1 << 20;
      for (int64_t b = 0; ok && b < n; b += step) {
        int64_t m = std::min(step, n - b);
        chunk.resize(static_cast<size_t>(m) * llmc::dtypeSize(dt));
        for (int64_t j = 0; j < m; ++j) {
          // Norms near 1, matrices with HF's initializer_range 0.02 (the
          // tiny preset's larger, so its logits are not all alike), biases
          // small.
          const bool bias = specs[i].shape.size() == 1 && !specs[i].norm;
          const float std = builtin ? 0.2f : 0.02f;
          float v = specs[i].norm ? 1.0f + rng.next(0.1f)
                    : bias        ? rng.next(0.05f)
                                  : rng.next(std);
          if (dt == llmc::DType::F32) {
            std::memcpy(&chunk[4 * j], &v, 4);
          } else {
            uint16_t h = dt == llmc::DType::F16 ? llmc::kernels::floatToHalf(v)
                                                : llmc::kernels::floatToBF16(v);
            std::memcpy(&chunk[2 * j], &h, 2);
          }
        }
        ok = std::fwrite(chunk.data(), 1, chunk.size(), f) == chunk.size();
        written += chunk.size();
      }
      if (isatty(2)) {
        std::fprintf(stderr, "\rllmc-make-model: %5.1f%% of %.2f GB",
                     100.0 * written / total, total / 1e9);
      }
    }
    ok = (std::fclose(f) == 0) && ok;
    if (isatty(2)) {
      std::fprintf(stderr, "\n");
    }
    if (!ok || std::rename(tmp.c_str(), path.c_str()) != 0) {
      std::remove(tmp.c_str());
      return fail(path + ": write failed: " + std::strerror(errno));
    }
  }

  nlohmann::ordered_json cfg = {
      {"architectures", {"LlamaForCausalLM"}},
      {"model_type", "llama"},
      {"hidden_size", p->hidden},
      {"intermediate_size", p->ffn},
      {"num_hidden_layers", static_cast<int64_t>(layers.size())},
      {"num_attention_heads", p->heads},
      {"num_key_value_heads", p->kvHeads},
      {"head_dim", hd},
      {"vocab_size", p->vocab},
      {"max_position_embeddings", p->maxPos},
      {"hidden_act", "silu"},
      {"rms_norm_eps", 1e-5},
      {"rope_theta", 10000.0},
      {"rope_scaling", nullptr},
      {"tie_word_embeddings", p->tied},
      {"attention_bias", static_cast<bool>(attentionBias)},
      {"mlp_bias", static_cast<bool>(mlpBias)},
      {"bos_token_id", 1},
      {"eos_token_id", 2},
      {"torch_dtype", dt == llmc::DType::F16   ? "float16"
                      : dt == llmc::DType::BF16 ? "bfloat16"
                                               : "float32"},
      {"llmc_note", configOnly ? std::string("config only, preset ") + p->name
                               : std::string("random weights, preset ") +
                                     p->name + ", seed " + std::to_string(seed)}};
  std::string cfgPath = outDir + "/config.json";
  if (Error e = writeToOutput(cfgPath, [&](raw_ostream &os) {
        os << cfg.dump(2) << "\n";
        return Error::success();
      })) {
    return fail(cfgPath + ": " + toString(std::move(e)));
  }
  std::string tokOut = outDir + (builtinBpe ? "/tokenizer.json" : "/tokenizer.model");
  if (builtin) {
    std::string bytes;
    if (builtinBpe) {
      auto json = llmc::writeByteLevelJson(builtinByteLevelTokenizer());
      if (!json) {
        return fail(tokOut + ": " + toString(json.takeError()));
      }
      bytes = *json;
    } else {
      bytes = llmc::writeSentencePieceModel(builtinTokenizer());
    }
    if (Error e = writeToOutput(tokOut, [&](raw_ostream &os) {
          os << bytes;
          return Error::success();
        })) {
      return fail(tokOut + ": " + toString(std::move(e)));
    }
  } else if (std::error_code ec = sys::fs::copy_file(tokenizer, tokOut)) {
    return fail(tokOut + ": " + ec.message());
  }
  outs() << "wrote " << outDir << ": " << p->what << ", " << specs.size()
         << " tensors, " << format("%.2f", total / 1e9) << " GB of " << dtype
         << " weights" << (configOnly ? " (config only: no weights written)" : "")
         << "\n";
  return 0;
}
