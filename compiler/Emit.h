// From the LLVM dialect to LLVM IR, an object file and a linked executable.
#ifndef LLMC_COMPILER_EMIT_H
#define LLMC_COMPILER_EMIT_H

#include "mlir/IR/BuiltinOps.h"
#include "llvm/IR/LLVMContext.h"
#include "llvm/IR/Module.h"
#include "llvm/Support/Error.h"

#include <memory>
#include <string>

namespace llmc {

struct TargetOptions {
  /// An LLVM CPU name; "native" means this machine's CPU.
  std::string cpu = "x86-64-v2";
};

/// f32 lanes of `target`'s widest vector registers: 16 with AVX-512F, 8
/// with AVX, else 4 (SSE).
llvm::Expected<int64_t> vectorFloats(const TargetOptions &target);

/// Translates a module in the LLVM dialect to LLVM IR for `target` and runs
/// LLVM's O3 pipeline on it.
llvm::Expected<std::unique_ptr<llvm::Module>>
translateAndOptimize(mlir::ModuleOp module, llvm::LLVMContext &context,
                     const TargetOptions &target);

/// Writes `module` as an ELF object file with LLVM's TargetMachine.
llvm::Error emitObject(llvm::Module &module, const TargetOptions &target,
                       const std::string &path);

/// Links `objectPath` with the runtime library into an executable at
/// `exePath`, through the system C++ driver ($CXX, else c++). `cuda` links
/// the CUDA backend and the static CUDA runtime too (the executable then
/// needs only the NVIDIA driver).
llvm::Error linkExecutable(const std::string &objectPath,
                           const std::string &exePath, bool cuda = false);

/// Whether this llmc was built with the CUDA backend.
bool cudaBackendAvailable();
/// Checks a --cuda-arch list ("sm_80,sm_90") against the architectures the
/// backend's kernels were built for.
llvm::Error checkCudaArchs(const std::string &archs);

/// Where the runtime's static libraries are (next to the llmc binary when
/// installed, else the build tree).
std::string runtimeLibraryDir();

} // namespace llmc

#endif // LLMC_COMPILER_EMIT_H
