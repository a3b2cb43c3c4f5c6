// llmc-make-model: writes a Hugging Face LLaMA checkpoint with deterministic random weights at preset shapes.
#include "compiler/Safetensors.h"
#include "compiler/SafetensorsWriter.h"
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
#include <unistd.h>

using namespace llvm;

namespace {

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
};

cl::opt<std::string> preset("preset",
                            cl::desc("Shapes: tinyllama-1.1b, llama2-7b or "
                                     "small"),
                            cl::value_desc("name"), cl::Required);
cl::opt<std::string> outDir("o", cl::desc("Checkpoint directory to create"),
                            cl::value_desc("dir"), cl::Required);
cl::opt<std::string> dtype("dtype", cl::desc("f16, bf16 or f32 (default f16)"),
                           cl::init("f16"));
cl::opt<uint64_t> seed("seed", cl::desc("Random seed (default 1)"),
                       cl::init(1));
cl::opt<std::string> tokenizerPath(
    "tokenizer",
    cl::desc("tokenizer.model to copy beside the weights (default: LLaMA-2's "
             "32000-piece tokenizer in ../shared/models/llama2-tokenizer)"),
    cl::value_desc("file"),
    cl::init(LLMC_SHARED_DIR "/models/llama2-tokenizer/tokenizer.model"));

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
                "' (tinyllama-1.1b, llama2-7b, small)");
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
  if (!sys::fs::exists(tokenizerPath)) {
    return fail(tokenizerPath + ": no such file (pass --tokenizer FILE, a "
                "SentencePiece tokenizer.model with 32000 pieces)");
  }
  if (std::error_code ec = sys::fs::create_directories(outDir)) {
    return fail(outDir + ": " + ec.message());
  }

  const int64_t hd = p->hidden / p->heads;
  std::vector<Spec> specs = {{"model.embed_tokens.weight", {p->vocab, p->hidden}, false}};
  for (int64_t l = 0; l < p->layers; ++l) {
    std::string q = "model.layers." + std::to_string(l) + ".";
    specs.push_back({q + "input_layernorm.weight", {p->hidden}, true});
    specs.push_back({q + "self_attn.q_proj.weight", {p->heads * hd, p->hidden}, false});
    specs.push_back({q + "self_attn.k_proj.weight", {p->kvHeads * hd, p->hidden}, false});
    specs.push_back({q + "self_attn.v_proj.weight", {p->kvHeads * hd, p->hidden}, false});
    specs.push_back({q + "self_attn.o_proj.weight", {p->hidden, p->heads * hd}, false});
    specs.push_back({q + "post_attention_layernorm.weight", {p->hidden}, true});
    specs.push_back({q + "mlp.gate_proj.weight", {p->ffn, p->hidden}, false});
    specs.push_back({q + "mlp.up_proj.weight", {p->ffn, p->hidden}, false});
    specs.push_back({q + "mlp.down_proj.weight", {p->hidden, p->ffn}, false});
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
        // Norms near 1, matrices with HF's initializer_range 0.02.
        float v = specs[i].norm ? 1.0f + rng.next(0.1f) : rng.next(0.02f);
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

  nlohmann::ordered_json cfg = {
      {"architectures", {"LlamaForCausalLM"}},
      {"model_type", "llama"},
      {"hidden_size", p->hidden},
      {"intermediate_size", p->ffn},
      {"num_hidden_layers", p->layers},
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
      {"bos_token_id", 1},
      {"eos_token_id", 2},
      {"torch_dtype", dt == llmc::DType::F16   ? "float16"
                      : dt == llmc::DType::BF16 ? "bfloat16"
                                               : "float32"},
      {"llmc_note", std::string("random weights, preset ") + p->name +
                        ", seed " + std::to_string(seed)}};
  std::string cfgPath = outDir + "/config.json";
  if (Error e = writeToOutput(cfgPath, [&](raw_ostream &os) {
        os << cfg.dump(2) << "\n";
        return Error::success();
      })) {
    return fail(cfgPath + ": " + toString(std::move(e)));
  }
  std::string tokOut = outDir + "/tokenizer.model";
  if (std::error_code ec = sys::fs::copy_file(tokenizerPath, tokOut)) {
    return fail(tokOut + ": " + ec.message());
  }
  outs() << "wrote " << outDir << ": " << p->what << ", " << specs.size()
         << " tensors, " << format("%.2f", total / 1e9) << " GB of " << dtype
         << " weights\n";
  return 0;
}
