// The `llm` module's @forward as the runtime evaluator's op list: what calibration runs and what the
// artifact carries. One translation, used by the passes and by the compiler's artifact builder.
#ifndef LLMC_PASSES_PROGRAM_H
#define LLMC_PASSES_PROGRAM_H

#include "dialects/llm/LLMDialect.h"
#include "runtime/core/evaluator.h"

#include "mlir/IR/BuiltinOps.h"

#include <deque>
#include <vector>

namespace llmc {

/// @forward as an op list, with the IR objects behind its indices.
struct ProgramView {
  eval::Program program;
  /// Tensor i is the i-th llm.global of the module (the artifact's order).
  std::vector<llm::GlobalOp> globals;
  /// Op i of the list is this llm op.
  std::vector<mlir::Operation *> ops;
  /// The value id of each activation.
  llvm::DenseMap<mlir::Value, int32_t> valueIds;
  /// The op index of each llm op.
  llvm::DenseMap<mlir::Operation *, size_t> opIndex;
  /// Tensor index of each global.
  llvm::DenseMap<mlir::Operation *, int32_t> globalIndex;
};

/// Translates @forward; emits an error (prefixed by `who`) and fails on
/// anything the evaluator cannot run: an op outside the llm dialect, an
/// embedding whose tokens or a rope/attention whose position is not
/// @forward's argument, two attention ops on one cache layer.
mlir::FailureOr<ProgramView> buildProgram(mlir::ModuleOp module,
                                          llvm::StringRef who);

/// The tensors of `view` as the evaluator takes them, read from the globals
/// as they are now. Splat data (tests) is expanded into `storage`.
std::vector<eval::Weight> bindWeights(const ProgramView &view,
                                      std::deque<std::vector<float>> &storage);

/// One global's data as a kernel operand (see bindWeights).
eval::Weight bindWeight(llm::GlobalOp g,
                        std::deque<std::vector<float>> &storage);

} // namespace llmc

#endif // LLMC_PASSES_PROGRAM_H
