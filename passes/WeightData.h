// Reading and replacing the data of `llm.global` weights, shared by the compression passes.
#ifndef LLMC_PASSES_WEIGHTDATA_H
#define LLMC_PASSES_WEIGHTDATA_H

#include "dialects/llm/LLMDialect.h"

#include "mlir/IR/BuiltinOps.h"

#include <optional>
#include <string>
#include <vector>

namespace llmc {

/// Whether a global carries its values (a module compiled from a config
/// alone has shapes only: see `llm.global`).
inline bool hasWeightValues(llm::GlobalOp global) {
  return static_cast<bool>(global.getDataAttr());
}

/// Gives a global without values the type `type` (a format or layout pass
/// on a shapes-only module changes the type alone).
void retypeShapesOnly(llm::GlobalOp global, llm::WeightType type);

/// For passes that need the weights' values: fails, with an error naming
/// `pass`, where a global of `module` has none.
mlir::LogicalResult requireWeightValues(mlir::ModuleOp module,
                                        llvm::StringRef pass);

/// A global's values as floats (float formats only); std::nullopt if its
/// data cannot be read.
std::optional<std::vector<float>> readFloatWeight(llm::GlobalOp global);

/// A global's values as floats, float and 2:4 sparse formats alike.
std::optional<std::vector<float>> readDenseWeight(llm::GlobalOp global);

/// Replaces a global's data with `values` stored in float format `kind`.
void writeFloatWeight(llm::GlobalOp global, llm::StorageKind kind,
                      const std::vector<float> &values);

/// Replaces a global's data and shape (structural passes shrink weights).
void writeFloatWeight(llm::GlobalOp global, llm::StorageKind kind,
                      llvm::ArrayRef<int64_t> shape,
                      const std::vector<float> &values);

/// A new float global `name` of `shape` holding `values`, inserted after
/// `after`.
llm::GlobalOp createFloatGlobal(llm::GlobalOp after, llvm::StringRef name,
                                llvm::ArrayRef<int64_t> shape,
                                llm::StorageKind kind,
                                const std::vector<float> &values);

/// Erases the ops of @forward whose results nothing uses (and that have no
/// effects), then every global no `llm.weight` refers to any more.
void eraseDeadCode(mlir::ModuleOp module);

/// Frees a global's data bytes (its resource blob) before the global is
/// rewritten or erased; the writers below call it for the data they replace.
void releaseWeightData(llm::GlobalOp global);

/// Replaces a global's data with quantized rows already in block layout.
void writeQuantWeight(llm::GlobalOp global, llm::StorageKind kind,
                      int64_t groupSize, bool asymmetric,
                      std::vector<uint8_t> bytes);

/// A global's stored bytes (any format; a splat is expanded), or nullopt.
std::optional<std::vector<char>> readStoredBytes(llm::GlobalOp global);

/// Data of type `type` holding `bytes` in its storage format, as a
/// resource blob named `name` (float formats: a tensor of the shape and
/// element type; block formats: a 1-D i8 tensor).
mlir::ElementsAttr makeWeightData(llm::WeightType type, llvm::StringRef name,
                                  llvm::ArrayRef<char> bytes);

/// Quantizes a float global by round-to-nearest.
void quantizeWeightRTN(llm::GlobalOp global, llm::StorageKind kind,
                       int64_t groupSize, bool asymmetric);

/// Sets every `llm.weight` reference to the type of the global it names.
void retypeWeightRefs(mlir::ModuleOp module);

/// A target format parsed from "f32", "f16", "bf16", "q8", "q4" or "q4a".
struct TargetFormat {
  llm::StorageKind kind;
  bool asymmetric = false;
};
std::optional<TargetFormat> parseTargetFormat(llvm::StringRef name);

/// `--keep` rules: "GLOB=FORMAT" (e.g. "model.embed_tokens.weight=q8").
struct KeepRule {
  std::string pattern;
  TargetFormat format;
};
/// Parses the rules; on error, emits it at `module` and returns nullopt.
std::optional<std::vector<KeepRule>>
parseKeepRules(mlir::ModuleOp module, llvm::ArrayRef<std::string> rules);
/// The first rule whose glob matches `name`.
const KeepRule *matchKeep(const std::vector<KeepRule> &rules,
                          llvm::StringRef name);

/// The options every quantization pass shares, checked: the target format
/// (`allowFloat`: f32/f16/bf16 too), the group size, and the keep rules.
/// Emits the error at `module`, prefixed by `pass`, and returns nullopt.
struct QuantTarget {
  TargetFormat format;
  std::vector<KeepRule> keep;
};
std::optional<QuantTarget> parseQuantOptions(mlir::ModuleOp module,
                                             llvm::StringRef pass,
                                             llvm::StringRef format,
                                             int64_t groupSize,
                                             llvm::ArrayRef<std::string> keep,
                                             bool allowFloat);

/// Applies `format` (float conversion, or RTN with `groupSize`) to a global.
void applyFormat(llm::GlobalOp global, const TargetFormat &format,
                 int64_t groupSize);

} // namespace llmc

#endif // LLMC_PASSES_WEIGHTDATA_H
