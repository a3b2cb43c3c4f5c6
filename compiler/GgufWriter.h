// Writes GGUF v3 files: metadata, tensor table, aligned data (for `llmc
// export --to gguf` and the tests that check the importer against it).
#ifndef LLMC_COMPILER_GGUFWRITER_H
#define LLMC_COMPILER_GGUFWRITER_H

#include "compiler/Gguf.h"

#include <functional>

namespace llmc {

class GgufWriter {
public:
  void addString(const std::string &key, const std::string &v);
  void addU32(const std::string &key, uint32_t v);
  void addF32(const std::string &key, float v);
  void addBool(const std::string &key, bool v);
  void addStrings(const std::string &key, const std::vector<std::string> &v);
  void addF32s(const std::string &key, const std::vector<float> &v);
  void addI32s(const std::string &key, const std::vector<int32_t> &v);

  /// A tensor of ggml type `type` with PyTorch-order `shape`; `produce`
  /// appends its bytes when the file is written (so a large model is never
  /// held whole in memory).
  void addTensor(const std::string &name, GgmlType type,
                 std::vector<int64_t> shape,
                 std::function<void(std::string &)> produce);

  /// Writes the file through a temporary file and a rename.
  llvm::Error write(const std::string &path) const;

private:
  struct Tensor {
    std::string name;
    GgmlType type;
    std::vector<int64_t> shape;
    std::function<void(std::string &)> produce;
  };
  std::string kv_; // serialized metadata entries
  uint64_t numKv_ = 0;
  std::vector<Tensor> tensors_;
};

/// Quantizes `n` floats (a multiple of 32) to Q8_0 blocks as llama.cpp
/// does: d = max|x| / 127 stored as f16, q = round(x / d).
void quantizeQ8_0(const float *x, int64_t n, std::string &out);

} // namespace llmc

#endif // LLMC_COMPILER_GGUFWRITER_H
