// The fingerprint that ties a compiled program to the tensor table it indexes.
#ifndef LLMC_RUNTIME_ARTIFACT_FINGERPRINT_H
#define LLMC_RUNTIME_ARTIFACT_FINGERPRINT_H

#include <cstdint>
#include <string>
#include <vector>

namespace llmc::artifact {

struct TensorSignature {
  std::string name;
  int32_t format;
  int32_t groupSize;
  bool asymmetric;
  std::vector<int64_t> shape;
};

/// hash64 over every tensor's name, format and shape, in table order.
uint64_t tensorTableFingerprint(const std::vector<TensorSignature> &tensors);

} // namespace llmc::artifact

#endif // LLMC_RUNTIME_ARTIFACT_FINGERPRINT_H
