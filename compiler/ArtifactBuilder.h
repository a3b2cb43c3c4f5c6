// Collects what the runtime needs from a compiled `llm` module into artifact contents.
#ifndef LLMC_COMPILER_ARTIFACTBUILDER_H
#define LLMC_COMPILER_ARTIFACTBUILDER_H

#include "runtime/artifact/writer.h"

#include "mlir/IR/BuiltinOps.h"
#include "llvm/Support/Error.h"

#include <atomic>
#include <string>

namespace llmc {

/// The config (from `llm.config`) and one tensor per `llm.global`, in module
/// order, with data pointing into the globals' blobs (valid while the
/// module's context lives). Tokenizer and build info are the caller's.
llvm::Expected<artifact::Contents> collectArtifact(mlir::ModuleOp module);

/// The fingerprint of the module's tensor table, as the runtime computes it
/// from the artifact.
uint64_t tensorFingerprint(mlir::ModuleOp module);

/// Hex SHA-256 of a file's contents ("" if unreadable, or when `cancel`
/// becomes true before the end: it is polled every 64 MiB).
std::string sha256File(const std::string &path,
                       const std::atomic<bool> *cancel = nullptr);

} // namespace llmc

#endif // LLMC_COMPILER_ARTIFACTBUILDER_H
