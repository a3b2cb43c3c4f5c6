// The compile pipeline: what `llmc compile` runs, as pass pipelines that llmc-opt can run too.
#ifndef LLMC_COMPILER_PIPELINE_H
#define LLMC_COMPILER_PIPELINE_H

#include "mlir/Pass/PassManager.h"
#include "llvm/Support/Error.h"

#include <string>
#include <vector>

namespace llmc {

/// Everything that decides which passes run, from `llmc compile`'s flags.
struct CompileOptions {
  enum class Quant { None, Q8, Q4 };
  enum class Method { RTN, GPTQ, AWQ };
  Quant quant = Quant::None;
  Method method = Method::RTN;
  bool asymmetric = false;
  int64_t groupSize = 32;
  std::vector<std::string> keep; // GLOB=FORMAT rules, the user's
  bool actOrder = false;         // GPTQ
  bool hasCalibration = false;   // --calib given
  /// Pruning and low-rank rewriting (before quantization): 0 = off.
  double pruneStructured = 0;    // --prune-structured RATIO
  double prune = 0;              // --prune RATIO
  std::string prunePattern = "unstructured"; // or N:M
  std::string pruneMethod;       // flap|wanda-sp|l2, magnitude|wanda; "" = default
  std::string lowrank;           // rank=R|energy=E|auto=F; "" = off
  bool toF16 = false;
  /// Fusion (--fuse, the default): projection fusion on every target; for
  /// the CPU target also the kernel fusions below, each of which
  /// `--disable-fusion NAME` turns off.
  bool fuse = true;
  std::vector<std::string> disabledFusions; // kFusionNames entries
  /// Whether fusion `name` (one of kFusionNames) runs.
  bool fusionOn(const std::string &name) const;
  /// q8/q4 matrices stored 8 rows interleaved for the CPU kernels
  /// (llm-interleave-weights; only for target "cpu").
  bool interleave = true;
  bool progress = true;
  /// Lowering: tokens per forward call (sizes the arena) and the weights
  /// file an executable opens when none is appended.
  int64_t maxTokens = 512;
  std::string defaultWeights;
  /// "cpu" or "cuda" (llm-lower-to-llvm's target).
  std::string target = "cpu";
  /// f32 lanes of the generated elementwise loops: the target CPU's widest
  /// float vector (llmc: vectorFloats(--target-cpu)).
  int64_t vectorWidth = 4;

  /// The quantized format's name for the passes: q8, q4 or q4a.
  std::string formatName() const;
  /// The pruning method in effect (the default depends on the kind).
  std::string effectivePruneMethod() const;
  bool unstructuredPruning() const {
    return prune > 0 || prunePattern != "unstructured";
  }
  /// Whether some pass needs calibration tokens (--calib).
  bool needsCalibration() const;
  /// The keep rules the passes get: the user's, then the defaults of --q4
  /// (embedding table and LM head at q8).
  std::vector<std::string> keepRules() const;
};

/// The fusions, in the order the pipeline runs them: projections (q/k/v,
/// gate/up into one linear), swiglu (silu(gate)*up as the gate/up
/// epilogue), residual (the add as the o/down_proj epilogue), rope (into
/// the attention's input), norm (RMSNorm into the linears' input stage).
extern const char *const kFusionNames[6];

/// A number as the user would write it ("0.5", "1e-09").
std::string fmtNum(double v);

/// Rejects contradictory or impossible options with the flag's own words.
llvm::Error checkOptions(const CompileOptions &options);

/// llm → llm: pruning, low-rank rewriting, calibrated quantization (GPTQ or AWQ), round-to-nearest
/// quantization, float re-encoding, projection fusion, canonicalization.
void buildCompressionPipeline(mlir::OpPassManager &pm,
                              const CompileOptions &options);

/// llm → LLVM dialect: memory plan, lowering (kernel calls and generated
/// loops, the program descriptor), then the upstream conversions.
void buildLoweringPipeline(mlir::OpPassManager &pm,
                           const CompileOptions &options);

/// Registers `llmc-compress` and `llmc-lower`, the same pipelines with
/// their options as pipeline options, for llmc-opt.
void registerPipelines();

} // namespace llmc

#endif // LLMC_COMPILER_PIPELINE_H
