// Entry points of the code-generation passes.
#ifndef LLMC_COMPILER_PASSES_H
#define LLMC_COMPILER_PASSES_H

#include "dialects/llm/LLMDialect.h"
#include "mlir/Pass/Pass.h"

namespace llmc {

#define GEN_PASS_DECL
#include "compiler/Passes.h.inc"

#define GEN_PASS_REGISTRATION
#include "compiler/Passes.h.inc"

/// Attribute names the planner writes and the lowering reads.
constexpr llvm::StringLiteral kOffsetAttr = llm::kOffsetAttrName;
/// Per-result offsets of an op with several results (a split linear).
constexpr llvm::StringLiteral kOffsetsAttr = "llm.offsets";
constexpr llvm::StringLiteral kArenaBytesAttr = llm::kArenaBytesAttrName;
constexpr llvm::StringLiteral kMaxTokensAttr = llm::kMaxTokensAttrName;

} // namespace llmc

#endif // LLMC_COMPILER_PASSES_H
