// Opens, verifies and maps an llmc artifact (a file of its own, or appended to an executable).
#ifndef LLMC_RUNTIME_ARTIFACT_READER_H
#define LLMC_RUNTIME_ARTIFACT_READER_H

#include "runtime/schema/artifact_generated.h"

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

namespace llmc::artifact {

/// One weight, checked to lie inside the mapping.
struct TensorRef {
  std::string_view name;
  fb::StorageFormat format;
  int32_t groupSize;
  bool asymmetric;
  std::vector<int64_t> shape;
  const uint8_t *data;
  uint64_t size;
};

class Reader {
public:
  /// Maps `path`: an artifact file, or an executable whose trailer points at
  /// its appended artifact. Every offset is checked and the flatbuffer is
  /// verified before this returns; `verifyWeights` also checks each
  /// tensor's checksum (reads every byte). On failure returns nullptr and
  /// sets `error` to "PATH: problem".
  static std::unique_ptr<Reader> open(const std::string &path,
                                      std::string &error,
                                      bool verifyWeights = false);
  ~Reader();
  Reader(const Reader &) = delete;
  Reader &operator=(const Reader &) = delete;

  const fb::Artifact &root() const { return *root_; }
  const std::vector<TensorRef> &tensors() const { return tensors_; }
  /// Compiled with --random-weights: the tensors' bytes are not in the file
  /// (their `data` is null) and the runtime synthesizes them.
  bool synthetic() const { return synthetic_; }
  /// The seed those values come from (runtime/core/synth.h's tensorKey).
  uint64_t syntheticSeed() const { return syntheticSeed_; }
  const TensorRef *find(std::string_view name) const;
  /// Bytes of the artifact itself (not of the executable carrying it).
  uint64_t size() const { return size_; }
  /// Bytes of all weight segments.
  uint64_t weightBytes() const;
  /// Where the artifact starts in its file (0 unless appended).
  uint64_t fileOffset() const { return fileOffset_; }
  const std::string &path() const { return path_; }

private:
  Reader() = default;
  std::string path_;
  void *map_ = nullptr;
  uint64_t mapSize_ = 0;
  const uint8_t *base_ = nullptr;
  uint64_t size_ = 0;
  uint64_t fileOffset_ = 0;
  const fb::Artifact *root_ = nullptr;
  std::vector<TensorRef> tensors_;
  bool synthetic_ = false;
  uint64_t syntheticSeed_ = 0;
};

/// Bytes that `numElements` elements of `format` occupy (rows of `rowLength`).
/// Returns 0 for a format/group combination that is invalid.
uint64_t storageBytes(fb::StorageFormat format, uint64_t numElements,
                      int64_t rowLength, int32_t groupSize, bool asymmetric);

} // namespace llmc::artifact

#endif // LLMC_RUNTIME_ARTIFACT_READER_H
