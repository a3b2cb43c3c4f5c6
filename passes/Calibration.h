// Runs calibration text through the module being compressed, block by block, with the runtime's
// evaluator: the passes find their matrices through the IR (llm.linear ops and the globals they read).
#ifndef LLMC_PASSES_CALIBRATION_H
#define LLMC_PASSES_CALIBRATION_H

#include "passes/Program.h"

#include "mlir/IR/BuiltinOps.h"
#include "llvm/ADT/DenseSet.h"

#include <deque>
#include <functional>
#include <memory>
#include <vector>

namespace llmc {

/// Name of the module attribute holding calibration token ids: a
/// tensor<WINDOWSxCTXxi32> (each row one window, no BOS).
constexpr llvm::StringLiteral kCalibrationAttrName = "llm.calibration";

/// The global an `llm.weight` value reads (null if it is not one).
llm::GlobalOp globalOf(mlir::Value weight);

/// Called with an input of the block's linear ops (once per distinct input
/// value, however many linears read it): `n` rows of `width` floats.
using LinearHook = std::function<void(mlir::Value input, const float *x,
                                      int64_t n, int64_t width)>;

/// Cuts @forward into blocks at the points where a single activation is
/// live (the residual stream), one block per attention op and what follows
/// it up to the next (a decoder layer), keeps every window's live
/// activations between blocks, and runs one block at a time: observe (with
/// hooks on each linear's input) leaves the activations as they were,
/// advance moves them past the block with the weights as they are then.
/// Block b is observed with the blocks before it already compressed.
/// Nothing here knows a tensor name or assumes that layers are alike.
class Calibrator {
public:
  /// Emits an error at `module` and returns nullptr when the module lacks
  /// calibration tokens or cannot be evaluated.
  static std::unique_ptr<Calibrator> create(mlir::ModuleOp module,
                                            llvm::StringRef passName);
  ~Calibrator();

  int64_t numBlocks() const { return static_cast<int64_t>(blocks_.size()); }
  /// The linear ops of block `b`, in program order.
  const std::vector<llm::LinearOp> &linears(int64_t b) const {
    return blocks_[b].linears;
  }
  int64_t tokens() const { return windows_ * ctx_; }

  void observe(int64_t b, const LinearHook &hook);
  void advance(int64_t b);

  /// One progress line on stderr ("llm-gptq: block 3/44, ...").
  void progress(int64_t blocksDone) const;

private:
  struct Block {
    size_t begin = 0, end = 0;
    std::vector<llm::LinearOp> linears;
    llvm::DenseSet<size_t> sites; // ops whose input the hook sees
  };
  Calibrator() = default;
  void run(int64_t b, eval::Evaluator::Mode mode, const LinearHook *hook);

  std::string passName_;
  ProgramView view_;
  std::unique_ptr<eval::Evaluator> evaluator_;
  std::vector<Block> blocks_;
  int64_t windows_ = 0, ctx_ = 0;
  std::vector<int32_t> tokens_;
  std::vector<eval::Evaluator::State> states_; // one per window
  std::deque<std::vector<float>> storage_;
  std::unique_ptr<ThreadPool> pool_;
  std::unique_ptr<llmc_exec> exec_;
  double startTime_ = 0;
};

} // namespace llmc

#endif // LLMC_PASSES_CALIBRATION_H
