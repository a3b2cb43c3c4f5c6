// llmc: the compiler driver. `llmc compile CKPT` walks the stage ladder up to --emit.
#include "compiler/WriteOutput.h"
#include "compiler/ArtifactBuilder.h"
#include "compiler/Checkpoint.h"
#include "compiler/Emit.h"
#include "compiler/Export.h"
#include "compiler/Importer.h"
#include "compiler/Pipeline.h"
#include "compiler/TokenizerImport.h"
#include "dialects/llm/LLMDialect.h"
#include "passes/WeightData.h"
#include "runtime/tokenizer/from_artifact.h"
#include "runtime/artifact/reader.h"
#include "runtime/kernels/kernels.h"
#include "runtime/kernels/quant.h"

#include "mlir/Dialect/Func/IR/FuncOps.h"
#include "mlir/IR/AsmState.h"
#include "mlir/IR/Diagnostics.h"
#include "mlir/Parser/Parser.h"
#include "mlir/IR/MLIRContext.h"
#include "mlir/Pass/Pass.h"
#include "mlir/Pass/PassInstrumentation.h"
#include "mlir/Pass/PassManager.h"
#include "llvm/Support/CommandLine.h"
#include "llvm/Support/FileSystem.h"
#include "llvm/Support/FileUtilities.h"
#include "llvm/Support/InitLLVM.h"
#include "llvm/Support/MemoryBuffer.h"
#include "llvm/Support/Path.h"
#include "llvm/Support/Process.h"
#include "llvm/Support/Signals.h"
#include "llvm/Support/WithColor.h"
#include "llvm/Support/raw_ostream.h"

#include <atomic>
#include <chrono>
#include <thread>
#include <cstring>
#include <csignal>
#include <malloc.h>

using namespace llvm;

namespace {

cl::SubCommand compileCmd("compile", "Compile a LLaMA checkpoint (Hugging Face "
                                      "directory or GGUF file) or an llm "
                                      "module, FILE.mlir");
cl::SubCommand exportCmd("export", "Write a checkpoint out as a Hugging Face "
                                   "checkpoint or a GGUF file");
cl::SubCommand inspectCmd("inspect", "Print an artifact's (or executable's) contents");
cl::OptionCategory compileCat("compile options");
cl::OptionCategory inspectCat("inspect options");
cl::OptionCategory exportCat("export options");

cl::opt<std::string> exportInput(cl::Positional,
                                 cl::desc("<checkpoint dir, .safetensors or "
                                          ".gguf file>"),
                                 cl::Required, cl::sub(exportCmd),
                                 cl::cat(exportCat));
cl::opt<std::string> exportOutput(
    "o",
    cl::desc("Output: a directory (Hugging Face) or a FILE.gguf"),
    cl::value_desc("path"), cl::Required, cl::sub(exportCmd),
    cl::cat(exportCat));
cl::opt<std::string> exportType(
    "type",
    cl::desc("GGUF matrix type: f32 (default), f16 or q8_0; 1-D tensors "
             "stay f32"),
    cl::value_desc("f32|f16|q8_0"), cl::init("f32"), cl::sub(exportCmd),
    cl::cat(exportCat));

cl::opt<std::string> checkpointPath(
    cl::Positional,
    cl::desc("<checkpoint dir, .safetensors file, .gguf file, .mlir llm "
             "module, or a config .json with --random-weights>"),
    cl::Required, cl::sub(compileCmd), cl::cat(compileCat));

cl::opt<std::string> outputPath(
    "o", cl::desc("Output file ('-' for stdout with --emit=mlir|llvm)"),
    cl::value_desc("path"), cl::init(""), cl::sub(compileCmd),
    cl::cat(compileCat));

enum class EmitKind { MLIR, LLVM, Obj, Exe, Safetensors };
cl::opt<EmitKind> emitKind(
    "emit", cl::desc("The last stage to run and what to write"),
    cl::values(
        clEnumValN(EmitKind::MLIR, "mlir",
                   "the module in the llm dialect, after the compression passes"),
        clEnumValN(EmitKind::LLVM, "llvm", "optimized LLVM IR of the program"),
        clEnumValN(EmitKind::Obj, "obj", "the program's object file (no weights)"),
        clEnumValN(EmitKind::Exe, "exe",
                   "a self-contained executable (program, runtime, weights)"),
        clEnumValN(EmitKind::Safetensors, "safetensors",
                   "a Hugging Face checkpoint directory (-o DIR) of the model "
                   "after the compression passes (projections unfused, "
                   "low-rank pairs multiplied out, quantized and sparse "
                   "weights as the f32 values they stand for)")),
    cl::init(EmitKind::Exe), cl::sub(compileCmd), cl::cat(compileCat));

cl::opt<bool> toF16("f16",
                    cl::desc("Store linear and embedding weights in f16 "
                             "(default: the checkpoint's dtype)"),
                    cl::init(false), cl::sub(compileCmd), cl::cat(compileCat));

cl::opt<bool> toQ8("q8",
                   cl::desc("Quantize every weight matrix (embeddings "
                            "included) to int8, groups of --group-size"),
                   cl::init(false), cl::sub(compileCmd), cl::cat(compileCat));

cl::opt<bool> toQ4(
    "q4",
    cl::desc("Quantize the decoder's weight matrices to int4, groups of "
             "--group-size; by default the embeddings and the LM head stay "
             "q8 (override with --keep)"),
    cl::init(false), cl::sub(compileCmd), cl::cat(compileCat));

cl::opt<bool> asymmetric("asym",
                         cl::desc("With --q4: a zero point per group "
                                  "(min/max range) instead of symmetric"),
                         cl::init(false), cl::sub(compileCmd),
                         cl::cat(compileCat));

cl::opt<int64_t> groupSize("group-size",
                           cl::desc("Elements per quantization group, a "
                                    "multiple of 32 (default 32)"),
                           cl::value_desc("n"), cl::init(32),
                           cl::sub(compileCmd), cl::cat(compileCat));

enum class QuantMethod { RTN, GPTQ, AWQ };
cl::opt<QuantMethod> quantMethod(
    "quant-method", cl::desc("How --q4/--q8 choose the quantized values"),
    cl::values(clEnumValN(QuantMethod::RTN, "rtn",
                          "round to nearest (default; no calibration)"),
               clEnumValN(QuantMethod::GPTQ, "gptq",
                          "GPTQ: Hessian-guided error compensation (needs --calib)"),
               clEnumValN(QuantMethod::AWQ, "awq",
                          "AWQ: activation-aware channel scales (needs --calib)")),
    cl::init(QuantMethod::RTN), cl::sub(compileCmd), cl::cat(compileCat));

cl::list<std::string> keepRules(
    "keep",
    cl::desc("Mixed precision: weights whose name matches GLOB get FORMAT "
             "(f32, f16, bf16, q8, q4, q4a), e.g. --keep 'lm_head.weight=q8' "
             "--keep '*.down_proj.weight=f16'; repeatable, first match wins"),
    cl::value_desc("GLOB=FORMAT"), cl::sub(compileCmd), cl::cat(compileCat));

cl::opt<std::string> calibPath(
    "calib",
    cl::desc("Calibration text for --quant-method gptq|awq, --prune-method "
             "flap|wanda-sp|wanda and --lowrank (tokenized whole, cut into "
             "--calib-windows windows of --calib-ctx tokens)"),
    cl::value_desc("file"), cl::init(""), cl::sub(compileCmd),
    cl::cat(compileCat));

cl::opt<double> pruneStructured(
    "prune-structured",
    cl::desc("Remove whole attention heads (KV groups) and FFN channels until "
             "RATIO of the weight matrices' parameters are gone, allocated "
             "across layers by --prune-method's scores (flap, wanda-sp, l2)"),
    cl::value_desc("ratio"), cl::init(0), cl::sub(compileCmd),
    cl::cat(compileCat));

cl::opt<double> pruneRatio(
    "prune",
    cl::desc("Set RATIO of each decoder matrix's weights to zero "
             "(--prune-method magnitude or wanda); weights stay dense-stored"),
    cl::value_desc("ratio"), cl::init(0), cl::sub(compileCmd),
    cl::cat(compileCat));

cl::opt<std::string> prunePattern(
    "prune-pattern",
    cl::desc("unstructured (default) or N:M, e.g. 2:4: keep N of every M "
             "consecutive weights of a row (--prune may be left out)"),
    cl::value_desc("unstructured|N:M"), cl::init("unstructured"),
    cl::sub(compileCmd), cl::cat(compileCat));

cl::opt<std::string> pruneMethod(
    "prune-method",
    cl::desc("Scores for pruning: flap (default), wanda-sp or l2 with "
             "--prune-structured; wanda (default) or magnitude with --prune. "
             "All but l2 and magnitude need --calib"),
    cl::value_desc("method"), cl::init(""), cl::sub(compileCmd),
    cl::cat(compileCat));

cl::opt<std::string> lowrankSpec(
    "lowrank",
    cl::desc("Factor decoder matrices as U*V by truncated SVD where it saves "
             "weights: rank=R (one rank), energy=E (keep E of each matrix's "
             "spectrum) or auto=F (keep F of the weights, ranks chosen per "
             "matrix from --calib activations); with --calib the SVD is "
             "activation-aware"),
    cl::value_desc("rank=R|energy=E|auto=F"), cl::init(""),
    cl::sub(compileCmd), cl::cat(compileCat));

cl::opt<int64_t> calibCtx("calib-ctx",
                          cl::desc("Tokens per calibration window (default "
                                   "min(256, max-seq))"),
                          cl::value_desc("tokens"), cl::init(0),
                          cl::sub(compileCmd), cl::cat(compileCat));

cl::opt<int64_t> calibWindows(
    "calib-windows",
    cl::desc("Most calibration windows to use (default 16)"),
    cl::value_desc("n"), cl::init(16), cl::sub(compileCmd),
    cl::cat(compileCat));

cl::opt<bool> actOrder("act-order",
                       cl::desc("GPTQ: quantize columns by decreasing "
                                "activation energy"),
                       cl::init(false), cl::sub(compileCmd),
                       cl::cat(compileCat));

cl::opt<std::string> weightsPath(
    "weights",
    cl::desc("Write the weights artifact to this file instead of appending it "
             "to the executable; the executable opens it from its own folder"),
    cl::value_desc("file"), cl::init(""), cl::sub(compileCmd),
    cl::cat(compileCat));

cl::opt<std::string> targetCpu(
    "target-cpu",
    cl::desc("CPU to generate code for: an LLVM CPU name, or 'native' "
             "(default x86-64-v2; kernels pick AVX2 at run time)"),
    cl::value_desc("cpu"), cl::init("x86-64-v2"), cl::sub(compileCmd),
    cl::cat(compileCat));

cl::opt<std::string> targetDevice(
    "target",
    cl::desc("Device the executable runs on: cpu (default) or cuda (the GPU "
             "kernels are linked in; --device cpu still runs on the CPU)"),
    cl::value_desc("cpu|cuda"), cl::init("cpu"), cl::sub(compileCmd),
    cl::cat(compileCat));

cl::opt<std::string> cudaArch(
    "cuda-arch",
    cl::desc("With --target cuda: the GPU architectures the executable must "
             "run on, comma-separated (sm_80, sm_90; default: all that this "
             "llmc's kernels were built for)"),
    cl::value_desc("sm_XX,..."), cl::init(""), cl::sub(compileCmd),
    cl::cat(compileCat));

cl::opt<std::string> randomWeights(
    "random-weights",
    cl::desc("Leave the weights out of the artifact: the executable fills "
             "every tensor with deterministic random values from SEED "
             "(default 0) where it runs, for speed at real shapes without "
             "carrying the weights (--perplexity refuses such a model). The "
             "input may then be a config.json alone"),
    cl::value_desc("SEED"), cl::ValueOptional, cl::init(""),
    cl::sub(compileCmd), cl::cat(compileCat));

cl::opt<int64_t> maxSeqLen(
    "max-seq",
    cl::desc("Longest context to support (default: the config's "
             "max_position_embeddings)"),
    cl::value_desc("tokens"), cl::init(0), cl::sub(compileCmd),
    cl::cat(compileCat));

cl::opt<int64_t> maxTokens(
    "max-tokens",
    cl::desc("Most tokens one forward call processes; sizes the activation "
             "arena (default: min(512, max-seq))"),
    cl::value_desc("tokens"), cl::init(0), cl::sub(compileCmd),
    cl::cat(compileCat));

cl::opt<bool> elideWeights(
    "elide-weights",
    cl::desc("With --emit=mlir, leave the weight bytes out of the printed "
             "module"),
    cl::init(false), cl::sub(compileCmd), cl::cat(compileCat));

cl::opt<bool> noFuse(
    "no-fuse",
    cl::desc("No fusion: q/k/v and gate/up stay separate matrix products, and "
             "norms, SwiGLU, residual adds and RoPE separate ops (default: "
             "all fused; see --disable-fusion)"),
    cl::init(false), cl::sub(compileCmd), cl::cat(compileCat));

cl::list<std::string> disableFusion(
    "disable-fusion",
    cl::desc("Leave out one fusion (repeatable, or comma-separated): "
             "projections (q/k/v, gate/up into one product), swiglu "
             "(silu(gate)*up as the gate/up kernel's epilogue), residual (the "
             "add as the o/down_proj epilogue), rope (into the attention's "
             "input), norm (RMSNorm into the next product's input stage), "
             "lm-head (the final RMSNorm into the LM head's input stage). "
             "The last five are CPU-target kernel fusions; greedy decoding "
             "on the CPU finds the argmax in the LM head, fused or not"),
    cl::value_desc("name"), cl::CommaSeparated, cl::sub(compileCmd),
    cl::cat(compileCat));

cl::opt<bool> noInterleave(
    "no-interleave",
    cl::desc("Store q8/q4 matrices row by row (default: 8 rows interleaved, "
             "the layout the CPU kernels stream; target cpu only)"),
    cl::init(false), cl::sub(compileCmd), cl::cat(compileCat));

cl::opt<bool> quiet("quiet", cl::desc("Print no progress lines"),
                    cl::init(false), cl::sub(compileCmd), cl::cat(compileCat));

cl::opt<std::string> inspectPath(cl::Positional,
                                 cl::desc("<artifact or executable>"),
                                 cl::Required, cl::sub(inspectCmd),
                                 cl::cat(inspectCat));
cl::opt<bool> inspectVerify("verify",
                            cl::desc("Also check every tensor's checksum"),
                            cl::init(false), cl::sub(inspectCmd),
                            cl::cat(inspectCat));

std::string mib(uint64_t bytes) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.1f", static_cast<double>(bytes) / 1048576.0);
  return buf;
}

int fail(const Twine &message) {
  WithColor::error(errs(), "llmc") << message << "\n";
  return 1;
}

class Progress {
public:
  void step(const Twine &what) {
    if (!quiet) {
      double t = std::chrono::duration<double>(
                     std::chrono::steady_clock::now() - start_)
                     .count();
      errs() << format("llmc: [%6.2fs] ", t) << what << "\n";
    }
  }

private:
  std::chrono::steady_clock::time_point start_ =
      std::chrono::steady_clock::now();
};

/// Prints a progress step when a pass named in `steps` (by its argument)
/// has run.
class StepReporter : public mlir::PassInstrumentation {
public:
  StepReporter(Progress &progress, llvm::StringMap<std::string> steps)
      : progress_(progress), steps_(std::move(steps)) {}
  void runAfterPass(mlir::Pass *pass, mlir::Operation *) override {
    auto it = steps_.find(pass->getArgument());
    if (it != steps_.end()) {
      progress_.step(it->second);
    }
  }

private:
  Progress &progress_;
  llvm::StringMap<std::string> steps_;
};

/// SHA-256 of the compile's source files on a thread of its own, started
/// before the passes so that hashing a 7B checkpoint (13.5 GB, about 11 s)
/// overlaps them instead of following them. Leaving early stops it within
/// 64 MiB per file.
class SourceHasher {
public:
  explicit SourceHasher(std::vector<std::string> paths)
      : paths_(std::move(paths)), thread_([this] {
          for (const std::string &p : paths_) {
            digests_.push_back(llmc::sha256File(p, &cancel_));
          }
        }) {}
  ~SourceHasher() {
    cancel_ = true;
    if (thread_.joinable()) {
      thread_.join();
    }
  }
  /// (path, hex digest) of every source, in order; waits for the thread.
  std::vector<std::pair<std::string, std::string>> take() {
    thread_.join();
    std::vector<std::pair<std::string, std::string>> out;
    for (size_t i = 0; i < paths_.size(); ++i) {
      out.push_back({paths_[i], digests_[i]});
    }
    return out;
  }

private:
  std::vector<std::string> paths_;
  std::vector<std::string> digests_;
  std::atomic<bool> cancel_{false};
  std::thread thread_;
};

std::string formatName(llmc::fb::StorageFormat f, int group, bool asym) {
  std::string s = llmc::fb::EnumNameStorageFormat(f);
  for (char &c : s) {
    c = static_cast<char>(std::tolower(c));
  }
  if (group > 0) {
    s += "<g" + std::to_string(group) + (asym ? ", asym>" : ">");
  }
  return s;
}

/// Writes `path` through a temporary file; `write` fills the temporary.
Error writeAtomically(const std::string &path,
                      function_ref<Error(const std::string &tmp)> write) {
  SmallString<256> tmp;
  SmallString<256> model(path);
  model += ".tmp%%%%%%";
  if (std::error_code ec = sys::fs::createUniqueFile(model, tmp)) {
    return createStringError(ec, path + ": cannot create a temporary file: " +
                                     ec.message());
  }
  std::string tmpPath(tmp);
  // Ctrl-C (or another fatal signal) mid-write removes it too.
  sys::RemoveFileOnSignal(tmpPath);
  if (Error e = write(tmpPath)) {
    sys::fs::remove(tmpPath);
    sys::DontRemoveFileOnSignal(tmpPath);
    return e;
  }
  if (std::error_code ec = sys::fs::rename(tmpPath, path)) {
    sys::fs::remove(tmpPath);
    sys::DontRemoveFileOnSignal(tmpPath);
    return createStringError(ec, path + ": cannot write: " + ec.message());
  }
  sys::DontRemoveFileOnSignal(tmpPath);
  return Error::success();
}

/// --emit=safetensors: the module's globals under their Hugging Face names,
/// each low-rank pair (NAME.v, NAME.u) multiplied back into NAME.
Error writeCheckpoint(mlir::ModuleOp module, const llmc::ModelConfig &config,
                      const llmc::fb::TokenizerT &tokenizer,
                      const std::string &dir) {
  std::vector<llmc::TensorData> tensors;
  StringMap<llmc::llm::GlobalOp> globals;
  for (auto g : module.getOps<llmc::llm::GlobalOp>()) {
    globals[g.getSymName()] = g;
  }
  for (auto g : module.getOps<llmc::llm::GlobalOp>()) {
    llmc::llm::WeightType t = g.getWeightType();
    StringRef name = g.getSymName();
    std::vector<int64_t> shape(t.getShape().begin(), t.getShape().end());
    if (t.isSparse()) {
      // 2:4 sparse: its kept values, with the zeros written out (f32 holds
      // f16 and scaled codes exactly).
      auto dense = llmc::readDenseWeight(g);
      if (!dense) {
        return createStringError(inconvertibleErrorCode(),
                                 "--emit=safetensors: cannot read @" + name);
      }
      std::vector<char> bytes(dense->size() * 4);
      std::memcpy(bytes.data(), dense->data(), bytes.size());
      tensors.push_back({name.str(), llmc::DType::F32, shape, std::move(bytes)});
      continue;
    }
    if (!t.isFloat()) {
      // q8/q4: the values the kernels compute with, as f32.
      auto stored = llmc::readStoredBytes(g);
      if (!stored) {
        return createStringError(inconvertibleErrorCode(),
                                 "--emit=safetensors: cannot read @" + name);
      }
      const int64_t cols = shape.back(), rows = t.getNumElements() / cols;
      const auto format = static_cast<int32_t>(t.getKind());
      const size_t rowBytes = llmc::kernels::quantRowBytes(
          format, cols, t.getGroupSize(), t.getAsymmetric());
      std::vector<char> bytes(static_cast<size_t>(rows * cols) * 4);
      for (int64_t r = 0; r < rows; ++r) {
        llmc::kernels::dequantizeRow(
            reinterpret_cast<const uint8_t *>(stored->data()) + r * rowBytes,
            cols, format, t.getGroupSize(), t.getAsymmetric(),
            reinterpret_cast<float *>(bytes.data()) + r * cols);
      }
      tensors.push_back({name.str(), llmc::DType::F32, shape, std::move(bytes)});
      continue;
    }
    if (name.ends_with(".u") && globals.count(name.drop_back(2).str() + ".v")) {
      continue; // written with its .v
    }
    if (name.ends_with(".v") && globals.count(name.drop_back(2).str() + ".u")) {
      auto v = llmc::readFloatWeight(g);
      auto u = llmc::readFloatWeight(globals[name.drop_back(2).str() + ".u"]);
      auto us = globals[name.drop_back(2).str() + ".u"].getWeightType().getShape();
      if (!u || !v) {
        return createStringError(inconvertibleErrorCode(),
                                 "--emit=safetensors: cannot read @" + name);
      }
      int64_t out = us[0], r = shape[0], in = shape[1];
      std::vector<char> bytes(out * in * 4);
      for (int64_t i = 0; i < out; ++i) {
        for (int64_t j = 0; j < in; ++j) {
          double acc = 0;
          for (int64_t k = 0; k < r; ++k) {
            acc += double((*u)[i * r + k]) * (*v)[k * in + j];
          }
          float f = static_cast<float>(acc);
          std::memcpy(bytes.data() + 4 * (i * in + j), &f, 4);
        }
      }
      tensors.push_back({name.drop_back(2).str(), llmc::DType::F32,
                         {out, in}, std::move(bytes)});
      continue;
    }
    auto bytes = llmc::readStoredBytes(g);
    if (!bytes) {
      return createStringError(inconvertibleErrorCode(),
                               "--emit=safetensors: cannot read @" + name);
    }
    llmc::DType dt = t.getKind() == llmc::llm::StorageKind::f16 ? llmc::DType::F16
                     : t.getKind() == llmc::llm::StorageKind::bf16
                         ? llmc::DType::BF16
                         : llmc::DType::F32;
    tensors.push_back({name.str(), dt, shape, std::move(*bytes)});
  }
  return llmc::exportModuleSafetensors(config, std::move(tensors), tokenizer,
                                       dir);
}

int runCompile(int argc, char **argv) {
  Progress progress;
  if (maxSeqLen < 0 || maxTokens < 0) {
    return fail("--max-seq and --max-tokens must be positive");
  }
  // 2^24 positions is past every LLaMA context, and keeps the cache's sizes
  // (positions x heads x head_dim) far from overflowing.
  constexpr int64_t kMaxContext = int64_t(1) << 24;
  if (maxSeqLen > kMaxContext) {
    return fail("--max-seq must be at most " + Twine(kMaxContext) + ", got " +
                Twine(int64_t(maxSeqLen)));
  }
  std::string out = outputPath;
  if (out.empty()) {
    out = (emitKind == EmitKind::MLIR || emitKind == EmitKind::LLVM) ? "-"
                                                                     : "";
  }
  if (out.empty()) {
    return fail("-o is required with --emit=obj, --emit=exe and "
                "--emit=safetensors");
  }
  if (emitKind == EmitKind::Safetensors) {
    if (out == "-") {
      return fail("--emit=safetensors writes a directory; give -o DIR");
    }
    if (StringRef(checkpointPath).ends_with(".mlir")) {
      return fail("--emit=safetensors needs a checkpoint's tokenizer; " +
                  checkpointPath + " is an llm module");
    }
  }
  if (out == "-" && (emitKind == EmitKind::Obj || emitKind == EmitKind::Exe)) {
    return fail("cannot write a binary to stdout; give -o FILE");
  }
  if (!weightsPath.empty() && emitKind != EmitKind::Exe) {
    return fail("--weights applies to --emit=exe");
  }
  if (!weightsPath.empty() && weightsPath == out) {
    return fail("--weights and -o name the same file");
  }
  if (toQ8 && toQ4) {
    return fail("--q8 and --q4 exclude each other");
  }
  if (targetDevice != "cpu" && targetDevice != "cuda") {
    return fail("--target must be cpu or cuda, got '" + targetDevice + "'");
  }
  if (!cudaArch.empty() && targetDevice != "cuda") {
    return fail("--cuda-arch goes with --target cuda");
  }
  if (targetDevice == "cuda") {
    if (!llmc::cudaBackendAvailable()) {
      return fail("--target cuda: this llmc was built without the CUDA "
                  "backend (no nvcc when it was configured)");
    }
    if (Error e = llmc::checkCudaArchs(cudaArch)) {
      return fail(toString(std::move(e)));
    }
  }
  const bool synthetic = randomWeights.getNumOccurrences() > 0;
  uint64_t seed = 0;
  if (synthetic && !randomWeights.empty() &&
      (StringRef(randomWeights).getAsInteger(10, seed) || seed > 0xFFFFFFFFull)) {
    return fail("--random-weights=SEED takes an integer from 0 to 4294967295, "
                "got '" + randomWeights + "'");
  }
  // A config alone has shapes but no values: it compiles to a --random-weights
  // executable, or to the module that shows what would be built.
  const bool configOnly = llmc::isConfigPath(checkpointPath);
  if (synthetic && emitKind != EmitKind::Exe &&
      !(configOnly && emitKind == EmitKind::MLIR)) {
    return fail("--random-weights applies to --emit=exe (and --emit=mlir "
                "from a config alone)");
  }
  if (configOnly && !synthetic) {
    return fail(checkpointPath + ": a config alone has no weights; compile "
                "it with --random-weights[=SEED] (an executable for speed "
                "only), or give the checkpoint's directory");
  }
  if (configOnly) {
    const char *needsValues =
        quantMethod != QuantMethod::RTN ? "--quant-method gptq|awq"
        : pruneStructured.getNumOccurrences() ? "--prune-structured"
        : pruneRatio.getNumOccurrences()      ? "--prune"
        : lowrankSpec.getNumOccurrences()     ? "--lowrank"
        : !calibPath.empty()                  ? "--calib"
                                              : nullptr;
    if (needsValues) {
      return fail(Twine(needsValues) + " needs the weights' values; " +
                  checkpointPath + " is a config alone (shapes only)");
    }
  }
  llmc::CompileOptions options;
  options.quant = toQ8   ? llmc::CompileOptions::Quant::Q8
                  : toQ4 ? llmc::CompileOptions::Quant::Q4
                         : llmc::CompileOptions::Quant::None;
  options.method = quantMethod == QuantMethod::GPTQ ? llmc::CompileOptions::Method::GPTQ
                   : quantMethod == QuantMethod::AWQ ? llmc::CompileOptions::Method::AWQ
                                                     : llmc::CompileOptions::Method::RTN;
  options.asymmetric = asymmetric;
  options.groupSize = groupSize;
  options.keep.assign(keepRules.begin(), keepRules.end());
  options.actOrder = actOrder;
  options.hasCalibration = !calibPath.empty();
  options.pruneStructured = pruneStructured;
  options.prune = pruneRatio;
  options.prunePattern = prunePattern;
  options.pruneMethod = pruneMethod;
  options.lowrank = lowrankSpec;
  options.toF16 = toF16;
  // A Hugging Face checkpoint has separate q/k/v and gate/up.
  options.fuse = !noFuse && emitKind != EmitKind::Safetensors;
  options.disabledFusions.assign(disableFusion.begin(), disableFusion.end());
  options.interleave = !noInterleave && emitKind != EmitKind::Safetensors;
  options.progress = !quiet;
  options.target = targetDevice;
  if (Error e = llmc::checkOptions(options)) {
    return fail(toString(std::move(e)));
  }
  const bool quantize = toQ8 || toQ4;
  // checkOptions let --calib through only where a pass reads it.
  const bool calibrated = !calibPath.empty();
  const char *methodName = quantMethod == QuantMethod::GPTQ ? "gptq" : "awq";
  for (const std::string &r : keepRules) {
    size_t eq = r.rfind('=');
    if (eq == std::string::npos || eq == 0 ||
        !llmc::parseTargetFormat(StringRef(r).substr(eq + 1))) {
      return fail("--keep '" + r + "': expected GLOB=FORMAT with FORMAT one "
                  "of f32, f16, bf16, q8, q4, q4a");
    }
  }
  if (calibWindows <= 0 || calibCtx < 0) {
    return fail("--calib-windows and --calib-ctx must be positive");
  }

  // The input: a checkpoint, or an llm module written by hand or by
  // `--emit=mlir` (its globals carry the weights; it has no tokenizer).
  const bool fromMLIR = StringRef(checkpointPath).ends_with(".mlir");
  mlir::MLIRContext context;
  context.disableMultithreading();
  context.loadDialect<llmc::llm::LLMDialect, mlir::func::FuncDialect>();
  // MLIR prints errors by itself; a pass's warning (a compromise it made)
  // is printed here, as one line, --quiet or not.
  context.getDiagEngine().registerHandler([](mlir::Diagnostic &d) {
    if (d.getSeverity() != mlir::DiagnosticSeverity::Warning) {
      return mlir::failure();
    }
    WithColor::warning(errs(), "llmc") << d.str() << "\n";
    return mlir::success();
  });
  mlir::OwningOpRef<mlir::ModuleOp> parsed;
  std::unique_ptr<llmc::Checkpoint> ckpt;
  int64_t configMaxSeq = 0;
  if (fromMLIR) {
    if (calibrated) {
      return fail("--calib is tokenized with the checkpoint's tokenizer; an .mlir "
                  "input has none (run llmc-opt on a module with llm.calibration)");
    }
    if (maxSeqLen > 0) {
      return fail("--max-seq applies to checkpoints: " + checkpointPath +
                  " fixes its own in llm.config and the kv_cache type");
    }
    parsed = mlir::parseSourceFile<mlir::ModuleOp>(checkpointPath, &context);
    if (!parsed) {
      return fail(checkpointPath + ": not a valid llm module (see above)");
    }
    auto cfg = (*parsed)->getAttrOfType<mlir::DictionaryAttr>(
        llmc::llm::kConfigAttrName);
    auto seq = cfg ? cfg.getAs<mlir::IntegerAttr>("max_seq_len") : nullptr;
    if (!seq) {
      return fail(checkpointPath + ": the module has no llm.config max_seq_len");
    }
    configMaxSeq = seq.getInt();
  } else {
    auto opened = llmc::Checkpoint::open(checkpointPath, configOnly);
    if (!opened) {
      return fail(toString(opened.takeError()));
    }
    ckpt = std::move(*opened);
    configMaxSeq = ckpt->config().maxPositionEmbeddings;
  }
  const int64_t maxSeq = maxSeqLen > 0 ? int64_t(maxSeqLen) : configMaxSeq;
  const int64_t chunk = maxTokens > 0 ? std::min<int64_t>(maxTokens, maxSeq)
                                      : std::min<int64_t>(512, maxSeq);
  // Outputs never replace an input, a device, a FIFO or a symlink's target
  // behind the user's back: the output is written to a temporary file and
  // renamed over the path, which would destroy any of them.
  {
    std::vector<std::string> inputs;
    if (ckpt) {
      inputs = ckpt->sourcePaths();
    } else {
      inputs.push_back(checkpointPath);
    }
    if (!calibPath.empty()) {
      inputs.push_back(calibPath);
    }
    std::vector<std::pair<const char *, std::string>> outputs;
    if (out != "-") {
      outputs.push_back({"-o", out});
    }
    if (!weightsPath.empty()) {
      outputs.push_back({"--weights", weightsPath});
    }
    for (const auto &[flag, path] : outputs) {
      sys::fs::file_status st;
      if (!sys::fs::status(path, st, /*follow=*/false)) {
        if (sys::fs::is_symlink_file(st)) {
          return fail(Twine(flag) + " " + path +
                      " is a symbolic link; name the file itself");
        }
        // --emit=mlir|llvm -o /dev/null checks a compile (writeOutput
        // writes /dev/null directly); anything else would be renamed over.
        bool devNull = path == "/dev/null" && (emitKind == EmitKind::MLIR ||
                                               emitKind == EmitKind::LLVM);
        bool dir = emitKind == EmitKind::Safetensors && flag == StringRef("-o") &&
                   sys::fs::is_directory(st);
        if (sys::fs::exists(st) && !sys::fs::is_regular_file(st) && !devNull &&
            !dir) {
          return fail(Twine(flag) + " " + path +
                      " exists and is not a regular file");
        }
      }
      for (const std::string &in : inputs) {
        bool same = false;
        if (!sys::fs::equivalent(path, in, same) && same) {
          return fail(Twine(flag) + " " + path + " is the input " + in +
                      "; writing it would destroy it");
        }
      }
    }
    if (outputs.size() == 2) {
      // The same file by another spelling (d/x and d/./x), existing or not.
      SmallString<256> a(out), b(weightsPath);
      sys::fs::make_absolute(a);
      sys::fs::make_absolute(b);
      sys::path::remove_dots(a, /*remove_dot_dot=*/true);
      sys::path::remove_dots(b, /*remove_dot_dot=*/true);
      bool same = false;
      if (a == b || (!sys::fs::equivalent(out, weightsPath, same) && same)) {
        return fail("--weights and -o name the same file");
      }
    }
  }

  // The tokenizer is needed only for the artifact, but a missing one is a
  // checkpoint error to report before any heavy work.
  std::optional<llmc::fb::TokenizerT> tokenizer;
  if (ckpt && (emitKind == EmitKind::Exe ||
               emitKind == EmitKind::Safetensors || calibrated)) {
    auto tok = ckpt->tokenizer();
    if (!tok) {
      return fail(toString(tok.takeError()));
    }
    // A tokenizer with more pieces than the model has embeddings is another
    // model's (fewer is common: vocabularies padded for the matrix kernels).
    const int64_t vocab = ckpt->config().vocabSize;
    if (static_cast<int64_t>(tok->pieces.size()) > vocab) {
      return fail(ckpt->directory() + ": the tokenizer has " +
                  Twine(static_cast<int64_t>(tok->pieces.size())) +
                  " pieces but the model's vocabulary (vocab_size) has " +
                  Twine(vocab) + ": a tokenizer of another model?");
    }
    tokenizer = std::move(*tok);
  }

  // Calibration text: tokenized whole (no BOS), cut into windows.
  const int64_t ctxPerWindow =
      calibCtx > 0 ? std::min<int64_t>(calibCtx, maxSeq) : std::min<int64_t>(256, maxSeq);
  std::vector<int32_t> calibTokens;
  int64_t windows = 0;
  if (calibrated) {
    auto text = MemoryBuffer::getFile(calibPath, /*IsText=*/true);
    if (!text) {
      return fail(calibPath + ": cannot read: " + text.getError().message());
    }
    std::optional<llmc::Tokenizer> tok;
    std::string problem;
    if (!llmc::tokenizerFromTables(*tokenizer, tok, problem)) {
      return fail(checkpointPath + ": " + problem);
    }
    std::vector<int32_t> ids = tok->encode((*text)->getBuffer());
    if (static_cast<int64_t>(ids.size()) < ctxPerWindow) {
      return fail(calibPath + ": " + Twine(ids.size()) +
                  " tokens, fewer than one calibration window of " +
                  Twine(ctxPerWindow) + " (see --calib-ctx)");
    }
    windows = std::min<int64_t>(calibWindows,
                                static_cast<int64_t>(ids.size()) / ctxPerWindow);
    calibTokens.assign(ids.begin(), ids.begin() + windows * ctxPerWindow);
  }

  std::optional<SourceHasher> hasher;
  if (emitKind == EmitKind::Exe) {
    hasher.emplace(ckpt ? ckpt->sourcePaths()
                        : std::vector<std::string>{checkpointPath});
  }

  mlir::OwningOpRef<mlir::ModuleOp> *module = &parsed;
  if (ckpt) {
    auto imported = llmc::importCheckpoint(context, *ckpt, maxSeq);
    if (!imported) {
      return fail(toString(imported.takeError()));
    }
    parsed = std::move(*imported);
    uint64_t ckptBytes = ckpt->sourceBytes();
    progress.step("imported " + checkpointPath + " (" +
                  Twine(ckpt->config().numLayers) + " layers, " +
                  (ckpt->shapesOnly() ? std::string("shapes only")
                                      : mib(ckptBytes) + " MiB of weights") +
                  ")");
  } else {
    progress.step("read the llm module " + checkpointPath);
  }

  // Compression, fusion and clean-up passes on the llm dialect.
  if (calibrated) {
    mlir::Builder b(&context);
    auto type = mlir::RankedTensorType::get({windows, ctxPerWindow},
                                            b.getI32Type());
    (**module)->setAttr("llm.calibration",
                        mlir::DenseIntElementsAttr::get(type, calibTokens));
    progress.step("calibration: " + Twine(windows) + " windows of " +
                  Twine(ctxPerWindow) + " tokens from " + calibPath);
  }
  mlir::PassManager pm(&context);
  llmc::buildCompressionPipeline(pm, options);
  // Each step is reported as its pass ends, so the times are true ones (a
  // 7B model quantizes for most of a minute).
  llvm::StringMap<std::string> steps;
  if (options.pruneStructured > 0) {
    steps["llm-prune-structured"] =
        ("pruned heads and FFN channels (" +
         Twine(options.effectivePruneMethod()) + ", ratio " +
         Twine(llmc::fmtNum(pruneStructured)) + ")").str();
  }
  if (options.unstructuredPruning()) {
    steps["llm-prune"] =
        ("pruned weights (" + Twine(options.effectivePruneMethod()) + ", " +
         prunePattern +
         (pruneRatio > 0 ? ", ratio " + llmc::fmtNum(pruneRatio)
                         : std::string()) + ")").str();
  }
  if (!options.lowrank.empty()) {
    steps["llm-lowrank"] = "factored matrices by truncated SVD (" + lowrankSpec + ")";
  }
  if (quantize) {
    steps["llm-quantize-weights"] =
        ("quantized to " + options.formatName() + " (group " +
         Twine(groupSize) + ", " +
         (quantMethod != QuantMethod::RTN ? methodName : "rtn") + ")").str();
  }
  if (toF16) {
    steps["llm-convert-weight-format"] =
        "converted the remaining float weights to f16";
  }
  if (options.fusionOn("projections")) {
    steps["llm-fuse-projections"] =
        "fused the projections that share an input (q/k/v, gate/up)";
  }
  if (options.target == "cpu") {
    // One line after the last of the kernel fusions (pipeline order).
    std::string kernelFusions, last;
    for (const char *name : {"swiglu", "residual", "rope", "norm", "lm-head"}) {
      if (options.fusionOn(name)) {
        kernelFusions += (kernelFusions.empty() ? "" : ", ") + std::string(name);
        last = std::string("llm-fuse-") + name;
      }
    }
    if (!kernelFusions.empty()) {
      steps[last] = "fused into the kernels: " + kernelFusions;
    }
  }
  pm.addInstrumentation(std::make_unique<StepReporter>(progress, std::move(steps)));
  if (failed(pm.run(**module))) {
    return fail("the llm passes failed on " + checkpointPath);
  }
  (**module)->removeAttr("llm.calibration");

  mlir::OpPrintingFlags flags;
  if (elideWeights) {
    flags.elideLargeResourceString(0);
  }
  if (emitKind == EmitKind::Safetensors) {
    if (Error e = writeCheckpoint(**module, ckpt->config(), *tokenizer, out)) {
      return fail(toString(std::move(e)));
    }
    progress.step("wrote the checkpoint " + out);
    return 0;
  }
  if (emitKind == EmitKind::MLIR) {
    Error err = llmc::writeOutput(out, [&](raw_ostream &os) -> Error {
      (**module)->print(os, flags);
      os << "\n";
      return Error::success();
    });
    return err ? fail(out + ": " + toString(std::move(err))) : 0;
  }

  // Artifact contents come from the globals, before lowering removes them.
  std::optional<llmc::artifact::Contents> contents;
  if (emitKind == EmitKind::Exe) {
    auto c = llmc::collectArtifact(**module);
    if (!c) {
      return fail(toString(c.takeError()));
    }
    contents = std::move(*c);
    if (tokenizer) {
      contents->tokenizer = std::move(*tokenizer);
    }
    contents->build.llmc_version = LLMC_VERSION;
    contents->build.target_cpu = targetCpu;
    if (contents->syntheticWeights && !synthetic) {
      return fail(checkpointPath + ": the module's globals have no data "
                  "(shapes only); compile it with --random-weights[=SEED]");
    }
    contents->syntheticWeights = synthetic;
    contents->syntheticSeed = seed;
    for (int i = 1; i < argc; ++i) {
      contents->build.flags.push_back(argv[i]);
    }
    contents->build.source_format = ckpt ? ckpt->format() : "mlir";
    auto digests = hasher->take();
    for (auto &[path, digest] : digests) {
      auto sf = std::make_unique<llmc::fb::SourceFileT>();
      sf->path = path;
      sf->sha256 = digest;
      contents->build.sources.push_back(std::move(sf));
    }
    progress.step("hashed " + Twine(digests.size()) + " source files");
  }

  std::string defaultWeights;
  if (!weightsPath.empty()) {
    // Relative to the executable's folder when both are in the same one.
    SmallString<256> exeDir(sys::path::parent_path(out));
    SmallString<256> wDir(sys::path::parent_path(weightsPath));
    sys::fs::make_absolute(exeDir);
    sys::fs::make_absolute(wDir);
    SmallString<256> absW(weightsPath);
    sys::fs::make_absolute(absW);
    defaultWeights = exeDir == wDir ? sys::path::filename(weightsPath).str()
                                    : std::string(absW);
  }

  options.maxTokens = chunk;
  options.defaultWeights = defaultWeights;
  llmc::TargetOptions target;
  target.cpu = targetCpu;
  Expected<int64_t> lanes = llmc::vectorFloats(target);
  if (!lanes) {
    return fail(toString(lanes.takeError()));
  }
  options.vectorWidth = *lanes;
  mlir::PassManager lower(&context);
  llmc::buildLoweringPipeline(lower, options);
  if (failed(lower.run(**module))) {
    return fail("lowering to LLVM failed");
  }
  progress.step("lowered to the LLVM dialect (arena planned for " +
                Twine(chunk) + " tokens per call)");

  LLVMContext llvmContext;
  auto llvmModule = llmc::translateAndOptimize(**module, llvmContext, target);
  if (!llvmModule) {
    return fail(toString(llvmModule.takeError()));
  }
  progress.step("optimized LLVM IR for " + targetCpu);
  if (emitKind == EmitKind::LLVM) {
    Error err = llmc::writeOutput(out, [&](raw_ostream &os) -> Error {
      (*llvmModule)->print(os, nullptr);
      return Error::success();
    });
    return err ? fail(out + ": " + toString(std::move(err))) : 0;
  }
  if (emitKind == EmitKind::Obj) {
    Error err = writeAtomically(out, [&](const std::string &tmp) {
      return llmc::emitObject(**llvmModule, target, tmp);
    });
    return err ? fail(toString(std::move(err))) : 0;
  }

  // --emit=exe: object, link, then the artifact appended or beside it.
  SmallString<128> objPath;
  if (std::error_code ec =
          sys::fs::createTemporaryFile("llmc-model", "o", objPath)) {
    return fail("cannot create a temporary object file: " + ec.message());
  }
  FileRemover removeObj(objPath);
  sys::RemoveFileOnSignal(objPath); // Ctrl-C during the link too
  if (Error e = llmc::emitObject(**llvmModule, target, std::string(objPath))) {
    return fail(toString(std::move(e)));
  }
  progress.step("emitted the object file");
  // Link first: a failed link leaves neither the executable nor the weights.
  Error err = writeAtomically(out, [&](const std::string &tmp) -> Error {
    if (Error e = llmc::linkExecutable(std::string(objPath), tmp,
                                       targetDevice == "cuda")) {
      return e;
    }
    std::string error;
    bool ok = weightsPath.empty()
                  ? llmc::artifact::appendArtifact(tmp, *contents, error)
                  : llmc::artifact::writeArtifactFile(weightsPath, *contents,
                                                      error);
    if (!ok) {
      return createStringError(inconvertibleErrorCode(), error);
    }
    return Error::success();
  });
  if (err) {
    return fail(toString(std::move(err)));
  }
  uint64_t size = 0;
  sys::fs::file_size(out, size);
  progress.step("wrote " + out + " (" + mib(size) + " MiB)");
  return 0;
}

int runExport() {
  const bool gguf = StringRef(exportOutput).ends_with(".gguf");
  llmc::GgmlType type;
  if (exportType == "f32") {
    type = llmc::GgmlType::F32;
  } else if (exportType == "f16") {
    type = llmc::GgmlType::F16;
  } else if (exportType == "q8_0") {
    type = llmc::GgmlType::Q8_0;
  } else {
    return fail("--type must be f32, f16 or q8_0, not '" + exportType + "'");
  }
  if (!gguf && exportType.getNumOccurrences()) {
    return fail("--type applies to a .gguf output");
  }
  auto ckpt = llmc::Checkpoint::open(exportInput);
  if (!ckpt) {
    return fail(toString(ckpt.takeError()));
  }
  for (const std::string &in : (*ckpt)->sourcePaths()) {
    bool same = false;
    std::string target = gguf ? exportOutput : exportOutput + "/" +
                                                   sys::path::filename(in).str();
    if (!sys::fs::equivalent(target, in, same) && same) {
      return fail("-o " + exportOutput + " would overwrite the input " + in);
    }
  }
  Error e = gguf ? llmc::exportGguf(**ckpt, exportOutput, type)
                 : llmc::exportSafetensors(**ckpt, exportOutput);
  if (e) {
    return fail(toString(std::move(e)));
  }
  return 0;
}

/// One line per decoder layer: what pruning and low-rank rewriting left of
/// it, read from the tensors' names, shapes and formats; with `countZeros`
/// (--verify, which reads every byte anyway) also the share of zero weights.
void printLayers(const llmc::artifact::Reader &r, int64_t headDim,
                 bool countZeros) {
  struct Layer {
    int64_t heads = 0, ffn = 0, zeros = 0, floats = 0, kv = 0;
    bool attention = false, mlp = false, quantized = false, sparse = false;
    std::string ranks;
  };
  std::map<int64_t, Layer> layers;
  for (const auto &t : r.tensors()) {
    StringRef name(t.name.data(), t.name.size());
    if (!name.consume_front("model.layers.")) {
      continue;
    }
    int64_t index = 0;
    if (name.consumeInteger(10, index) || !name.consume_front(".")) {
      continue;
    }
    Layer &l = layers[index];
    bool lowrankIn = name.ends_with(".weight.v");
    StringRef base = name.split(".weight").first; // self_attn.o_proj, ...
    if (base == "self_attn.o_proj" && t.shape.size() == 2 &&
        (name.ends_with(".weight") || lowrankIn)) {
      l.attention = true;
      l.heads = headDim > 0 ? t.shape[1] / headDim : 0;
    }
    if (base == "mlp.down_proj" && t.shape.size() == 2 &&
        (name.ends_with(".weight") || lowrankIn)) {
      l.mlp = true;
      l.ffn = t.shape[1];
    }
    if (name.ends_with(".weight.u") && t.shape.size() == 2) {
      l.ranks += (l.ranks.empty() ? "" : " ") +
                 base.rsplit('.').second.str() + "=" +
                 std::to_string(t.shape[1]);
    }
    if (t.shape.size() != 2) {
      continue;
    }
    l.sparse |= llmc::kernels::isSparseFormat(static_cast<int32_t>(t.format));
    int64_t n = t.shape[0] * t.shape[1];
    if (!countZeros || !t.data) {
      continue; // no read asked for, or synthesized at load
    }
    if (t.format == llmc::fb::StorageFormat::F32) {
      for (int64_t i = 0; i < n; ++i) {
        uint32_t b;
        std::memcpy(&b, t.data + 4 * i, 4);
        l.zeros += (b & 0x7fffffffu) == 0;
      }
      l.floats += n;
    } else if (t.format == llmc::fb::StorageFormat::F16 ||
               t.format == llmc::fb::StorageFormat::BF16) {
      for (int64_t i = 0; i < n; ++i) {
        uint16_t b;
        std::memcpy(&b, t.data + 2 * i, 2);
        l.zeros += (b & 0x7fffu) == 0;
      }
      l.floats += n;
    } else if (llmc::kernels::isSparseFormat(static_cast<int32_t>(t.format))) {
      const auto format = static_cast<int32_t>(t.format);
      std::vector<float> row(static_cast<size_t>(t.shape[1]));
      const size_t rowBytes = llmc::kernels::sparseRowBytes(format, t.shape[1]);
      for (int64_t r = 0; r < t.shape[0]; ++r) {
        llmc::kernels::unpackSparseRow(t.data + r * rowBytes, t.shape[1],
                                       format, row.data());
        for (float v : row) {
          l.zeros += v == 0.0f;
        }
      }
      l.floats += n;
    } else {
      l.quantized = true;
    }
  }
  if (layers.empty()) {
    return;
  }
  // Cache layers belong to the attention layers, in order.
  const auto *prog = r.root().program();
  size_t next = 0;
  for (auto &[i, l] : layers) {
    if (l.attention && prog && prog->cache() && next < prog->cache()->size()) {
      l.kv = prog->cache()->Get(next++)->kv_heads();
    }
  }
  outs() << "layers (attention heads/kv heads, FFN width, low-rank ranks, "
            "2:4 storage"
         << (countZeros ? ", zero weights" : "; --verify counts zero weights")
         << "):\n";
  for (const auto &[i, l] : layers) {
    outs() << "  " << i << ": attention "
           << (l.attention ? std::to_string(l.heads) + "/" + std::to_string(l.kv)
                           : std::string("removed"))
           << ", FFN " << (l.mlp ? std::to_string(l.ffn) : std::string("removed"))
           << ", " << (l.ranks.empty() ? std::string("full rank")
                                       : "ranks " + l.ranks);
    if (l.floats > 0) {
      outs() << format(", %.1f%% zeros", 100.0 * l.zeros / l.floats);
      if (l.quantized) {
        outs() << " (of the float matrices)";
      }
    }
    if (l.sparse) {
      outs() << ", 2:4 sparse";
    }
    outs() << "\n";
  }
}

int runInspect() {
  std::string error;
  auto r = llmc::artifact::Reader::open(inspectPath, error, inspectVerify);
  if (!r) {
    return fail(error);
  }
  const auto &root = r->root();
  const auto &c = *root.config();
  outs() << "artifact: " << inspectPath;
  if (r->fileOffset() != 0) {
    outs() << " (appended at byte " << r->fileOffset() << ")";
  }
  outs() << "\n  size: " << r->size() << " bytes, weights: " << r->weightBytes()
         << " bytes"
         << (r->synthetic() ? " (not in the file: --random-weights, synthesized "
                              "at load from seed " +
                                  std::to_string(r->syntheticSeed()) + ")"
                            : "")
         << "\n";
  outs() << "config:\n"
         << "  hidden_size " << c.hidden_size() << ", intermediate_size "
         << c.intermediate_size() << ", layers " << c.num_layers()
         << ", heads " << c.num_heads() << ", kv_heads " << c.num_kv_heads()
         << ", head_dim " << c.head_dim() << "\n"
         << "  vocab " << c.vocab_size() << ", max_seq_len " << c.max_seq_len()
         << ", rms_norm_eps " << c.rms_norm_eps() << ", rope_theta "
         << c.rope_theta() << ", tied embeddings "
         << (c.tie_word_embeddings() ? "yes" : "no") << "\n";
  if (const auto *t = root.tokenizer()) {
    const bool bpe = t->model() == llmc::fb::TokenizerModel::ByteLevelBPE;
    outs() << "tokenizer: "
           << (bpe ? "byte-level BPE (pre-tokenizer " +
                         (t->pre_tokenizer() ? t->pre_tokenizer()->str() : "?") +
                         ", " +
                         std::to_string(t->merges() ? t->merges()->size() : 0) +
                         " merges)"
                   : std::string("SentencePiece BPE"))
           << ", " << (t->pieces() ? t->pieces()->size() : 0)
           << " pieces, bos " << t->bos_id() << ", eos " << t->eos_id()
           << ", unk " << t->unk_id() << ", add bos "
           << (t->add_bos() ? "yes" : "no");
    if (!bpe) {
      outs() << ", byte fallback " << (t->byte_fallback() ? "yes" : "no");
    }
    outs() << "\n";
  }
  outs() << "tensors: " << r->tensors().size() << "\n";
  std::map<std::string, std::pair<int, uint64_t>> byFormat;
  for (const auto &t : r->tensors()) {
    std::string shape;
    for (size_t i = 0; i < t.shape.size(); ++i) {
      shape += (i ? "x" : "") + std::to_string(t.shape[i]);
    }
    std::string fmt = formatName(t.format, t.groupSize, t.asymmetric);
    outs() << format("  %-48s %-14s %-12s %12llu bytes\n",
                     std::string(t.name).c_str(), fmt.c_str(), shape.c_str(),
                     static_cast<unsigned long long>(t.size));
    byFormat[fmt].first++;
    byFormat[fmt].second += t.size;
  }
  printLayers(*r, c.head_dim(), inspectVerify);
  outs() << "by format:\n";
  for (const auto &[fmt, v] : byFormat) {
    outs() << format("  %-14s %4d tensors %14llu bytes\n", fmt.c_str(), v.first,
                     static_cast<unsigned long long>(v.second));
  }
  if (const auto *b = root.build()) {
    outs() << "compiled by: llmc "
           << (b->llmc_version() ? b->llmc_version()->str() : "?")
           << ", target cpu "
           << (b->target_cpu() ? b->target_cpu()->str() : "?") << "\n  flags:";
    if (b->flags()) {
      for (const auto *f : *b->flags()) {
        outs() << " " << f->str();
      }
    }
    outs() << "\n";
    if (b->source_format()) {
      outs() << "  source format: " << b->source_format()->str() << "\n";
    }
    if (b->sources()) {
      for (const auto *s : *b->sources()) {
        outs() << "  source " << (s->path() ? s->path()->str() : "?")
               << " sha256 " << (s->sha256() ? s->sha256()->str() : "?")
               << "\n";
      }
    }
  }
  outs() << "program fingerprint: "
         << format_hex(root.program_fingerprint(), 18) << "\n";
  if (const auto *prog = root.program()) {
    std::map<std::string, int> kinds;
    if (prog->ops()) {
      for (const auto *op : *prog->ops()) {
        kinds[llmc::fb::EnumNameOpKind(op->kind())]++;
      }
    }
    outs() << "program: " << (prog->ops() ? prog->ops()->size() : 0)
           << " ops (";
    bool first = true;
    for (const auto &[k, n] : kinds) {
      outs() << (first ? "" : ", ") << n << " " << k;
      first = false;
    }
    outs() << ")\n  kv cache per layer (kv_heads x head_dim):";
    if (prog->cache()) {
      for (const auto *c : *prog->cache()) {
        outs() << " " << c->kv_heads() << "x" << c->head_dim();
      }
    }
    outs() << "\n";
  }
  if (inspectVerify) {
    outs() << "checksums: all " << r->tensors().size() << " tensors verified\n";
  }
  return 0;
}

void printVersion(raw_ostream &os) {
  os << "llmc " << LLMC_VERSION << " (MLIR/LLVM " << LLVM_VERSION_STRING
     << ")\n";
}

} // namespace

int main(int argc, char **argv) {
  InitLLVM y(argc, argv);
  // A file-size limit (RLIMIT_FSIZE) makes a write fail with EFBIG, which the
  // writers report and clean up after, instead of killing llmc mid-file.
  std::signal(SIGXFSZ, SIG_IGN);
  // Weight buffers of a megabyte or more come straight from mmap, so that
  // freeing one (a pass replacing a tensor's data) returns it to the system.
  // glibc's default threshold rises with every such free, up to 32 MB, and
  // a 7B model's tensors then pile up in a heap that never shrinks.
  mallopt(M_MMAP_THRESHOLD, 1 << 20);
  cl::SetVersionPrinter(printVersion);
  cl::HideUnrelatedOptions({&compileCat, &inspectCat, &exportCat});
  // `--random-weights SEED` reads as `--random-weights=SEED` (the option's
  // value is optional, so the parser alone would take SEED for the input).
  std::vector<std::string> merged;
  std::vector<char *> args;
  for (int i = 0; i < argc; ++i) {
    StringRef a(argv[i]);
    if ((a == "--random-weights" || a == "-random-weights") && i + 1 < argc &&
        !StringRef(argv[i + 1]).empty() &&
        llvm::all_of(StringRef(argv[i + 1]),
                      [](char c) { return c >= '0' && c <= '9'; })) {
      merged.push_back("--random-weights=" + std::string(argv[++i]));
    } else {
      merged.push_back(argv[i]);
    }
  }
  for (std::string &a : merged) {
    args.push_back(a.data());
  }
  argc = static_cast<int>(args.size());
  argv = args.data();
  cl::ParseCommandLineOptions(
      argc, argv,
      "llmc: an ahead-of-time compiler for LLaMA-family models\n\n"
      "  llmc compile CKPT -o OUT [--f16 | --q8 | --q4] [--emit=mlir|llvm|obj|exe]\n"
      "  llmc inspect FILE [--verify]\n"
      "  llmc export CKPT -o DIR | -o FILE.gguf [--type f32|f16|q8_0]\n"
      "  llmc <command> --help   lists the options of a command\n");
  if (compileCmd) {
    return runCompile(argc, argv);
  }
  if (inspectCmd) {
    return runInspect();
  }
  if (exportCmd) {
    return runExport();
  }
  errs() << "llmc: no command given; try 'llmc --help'\n";
  return 1;
}
