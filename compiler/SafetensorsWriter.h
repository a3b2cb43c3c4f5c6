// Writes safetensors files (for the random-weight model maker and the tests).
#ifndef LLMC_COMPILER_SAFETENSORSWRITER_H
#define LLMC_COMPILER_SAFETENSORSWRITER_H

#include "compiler/Safetensors.h"

namespace llmc {

/// A tensor to write: its bytes are already in `dtype`'s little-endian form.
struct TensorData {
  std::string name;
  DType dtype;
  std::vector<int64_t> shape;
  std::vector<char> bytes;
};

/// The 8-byte length and padded JSON header for tensors of the given byte
/// sizes, laid out in order (for writers that stream the data after it).
std::string serializeSafetensorsHeader(const std::vector<TensorData> &tensors,
                                       const std::vector<uint64_t> &sizes);

/// The complete file image (header length, JSON header padded to 8 bytes,
/// tensor data in the given order).
std::string serializeSafetensors(const std::vector<TensorData> &tensors);

/// Writes `tensors` to `path` through a temporary file and a rename.
llvm::Error writeSafetensors(const std::string &path,
                             const std::vector<TensorData> &tensors);

} // namespace llmc

#endif // LLMC_COMPILER_SAFETENSORSWRITER_H
