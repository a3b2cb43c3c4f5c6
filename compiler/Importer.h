// Imports a Hugging Face LLaMA checkpoint into a module of the `llm` dialect.
#ifndef LLMC_COMPILER_IMPORTER_H
#define LLMC_COMPILER_IMPORTER_H

#include "compiler/Checkpoint.h"

#include "mlir/IR/BuiltinOps.h"
#include "mlir/IR/OwningOpRef.h"

namespace llmc {

/// Builds the `llm` module of `ckpt`. Weights become `llm.global`s whose data
/// are resource blobs pointing into the checkpoint's mapped files (the blobs
/// keep the mappings alive), so the checkpoint object may be destroyed after.
/// `maxSeqLen` overrides the config's max_position_embeddings when positive.
llvm::Expected<mlir::OwningOpRef<mlir::ModuleOp>>
importCheckpoint(mlir::MLIRContext &context, const Checkpoint &ckpt,
                 int64_t maxSeqLen = 0);

} // namespace llmc

#endif // LLMC_COMPILER_IMPORTER_H
