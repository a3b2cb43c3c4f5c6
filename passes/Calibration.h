// Runs calibration text through the model being compressed, layer by layer, with the runtime's kernels.
#ifndef LLMC_PASSES_CALIBRATION_H
#define LLMC_PASSES_CALIBRATION_H

#include "dialects/llm/LLMDialect.h"
#include "runtime/core/reference.h"

#include "mlir/IR/BuiltinOps.h"

#include <memory>
#include <vector>

namespace llmc {

/// Name of the module attribute holding calibration token ids: a
/// tensor<WINDOWSxCTXxi32> (each row one window, no BOS).
constexpr llvm::StringLiteral kCalibrationAttrName = "llm.calibration";

/// The decoder's weights by role, as globals of the module (by their
/// Hugging Face names).
struct LayerGlobals {
  llm::GlobalOp inputNorm, q, k, v, o, postNorm, gate, up, down;
  /// The linears whose input is observed at each LinearSite.
  std::vector<llm::GlobalOp> at(LinearSite site) const;
};

/// Holds the hidden states of every calibration window between layers, so
/// passes can observe layer l's linear inputs with layers < l already
/// compressed, then advance.
class LayerwiseCalibrator {
public:
  /// Emits an error at `module` and returns nullptr when the module lacks
  /// calibration tokens, a config, or a weight the decoder needs.
  static std::unique_ptr<LayerwiseCalibrator> create(mlir::ModuleOp module,
                                                     llvm::StringRef passName);
  ~LayerwiseCalibrator();

  int64_t numLayers() const { return static_cast<int64_t>(layers_.size()); }
  const LayerGlobals &layer(int64_t l) const { return layers_[l]; }
  int64_t tokens() const { return windows_ * ctx_; }

  /// Runs layer `l` (current weights) on every window, calling `hook` with
  /// each site's input; the hidden states are not changed.
  void observe(int64_t l, const SiteHook &hook);
  /// Applies layer `l` (current weights) to the hidden states.
  void advance(int64_t l);

  /// One progress line on stderr ("llm-gptq: layer 3/22, 12 s left").
  void progress(int64_t layersDone) const;

private:
  LayerwiseCalibrator() = default;
  /// Refreshes the kernels' view of layer `l` (weights may have changed).
  void bind(int64_t l);
  RefWeight refOf(llm::GlobalOp g);

  mlir::ModuleOp module_;
  std::string passName_;
  RefModel model_;
  std::vector<LayerGlobals> layers_;
  int64_t windows_ = 0, ctx_ = 0;
  std::vector<float> hidden_; // windows x ctx x hidden
  std::vector<std::vector<float>> floatCopies_;
  std::unique_ptr<ThreadPool> pool_;
  std::unique_ptr<llmc_exec> exec_;
  double startTime_ = 0;
};

} // namespace llmc

#endif // LLMC_PASSES_CALIBRATION_H
