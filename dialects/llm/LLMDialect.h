// Public header of the `llm` dialect: dialect, types and ops.
#ifndef LLMC_DIALECTS_LLM_LLMDIALECT_H
#define LLMC_DIALECTS_LLM_LLMDIALECT_H

#include "mlir/Bytecode/BytecodeOpInterface.h"
#include "mlir/IR/BuiltinAttributes.h"
#include "mlir/IR/BuiltinTypes.h"
#include "mlir/IR/Dialect.h"
#include "mlir/IR/OpDefinition.h"
#include "mlir/IR/SymbolTable.h"
#include "mlir/Interfaces/InferTypeOpInterface.h"
#include "mlir/Interfaces/SideEffectInterfaces.h"

#include "dialects/llm/LLMEnums.h.inc"

#include "dialects/llm/LLMDialect.h.inc"

#define GET_TYPEDEF_CLASSES
#include "dialects/llm/LLMTypes.h.inc"

#define GET_OP_CLASSES
#include "dialects/llm/LLMOps.h.inc"

namespace llmc {
/// Name of a model's entry function: forward(tokens, start, cache) -> logits.
constexpr llvm::StringLiteral kForwardFuncName = "forward";
} // namespace llmc

namespace llmc::llm {

/// Name of the module attribute that holds the model configuration.
constexpr llvm::StringLiteral kConfigAttrName = "llm.config";
/// Memory-plan attributes: an op result's byte offset in the arena, and the
/// arena size and tokens per call of the planned function.
constexpr llvm::StringLiteral kOffsetAttrName = "llm.offset";
constexpr llvm::StringLiteral kArenaBytesAttrName = "llm.arena_bytes";
constexpr llvm::StringLiteral kMaxTokensAttrName = "llm.max_tokens";

/// Bytes per stored element for the floating formats; 0 for block formats.
int64_t floatElementBytes(StorageKind kind);

/// Bytes of one quantization block of `groupSize` elements.
int64_t blockBytes(StorageKind kind, int64_t groupSize, bool asymmetric);

} // namespace llmc::llm

#endif // LLMC_DIALECTS_LLM_LLMDIALECT_H
