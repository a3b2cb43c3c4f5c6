// Writes llmc artifacts: as a file of their own, or appended to an executable with a trailer.
#ifndef LLMC_RUNTIME_ARTIFACT_WRITER_H
#define LLMC_RUNTIME_ARTIFACT_WRITER_H

#include "runtime/core/evaluator.h"
#include "runtime/schema/artifact_generated.h"

#include <string>
#include <vector>

namespace llmc::artifact {

struct WriterTensor {
  std::string name;
  fb::StorageFormat format = fb::StorageFormat::F32;
  int32_t groupSize = 0;
  bool asymmetric = false;
  std::vector<int64_t> shape;
  const void *data = nullptr; // `size` bytes, already in `format`
  uint64_t size = 0;
};

struct Contents {
  fb::ModelConfigT config;
  fb::TokenizerT tokenizer;
  fb::BuildInfoT build;
  std::vector<WriterTensor> tensors;
  uint64_t programFingerprint = 0;
  /// The program as data (written when it has ops).
  eval::Program program;
  /// Leave the tensors' bytes out (--random-weights): the segment is marked
  /// synthetic and the runtime fills it (runtime/core/synth.h).
  bool syntheticWeights = false;
  /// With syntheticWeights: the seed of the values (--random-weights=SEED).
  uint64_t syntheticSeed = 0;
};

/// Writes `c` as a stand-alone artifact at `path` (temporary file, then
/// rename). Returns false and sets `error` ("PATH: problem") on failure.
bool writeArtifactFile(const std::string &path, const Contents &c,
                       std::string &error);

/// Appends `c` to the file at `path` (page-aligned) followed by a trailer, so
/// the runtime finds it at the end of an executable. The caller owns the
/// temporary-file-and-rename protocol for `path`.
bool appendArtifact(const std::string &path, const Contents &c,
                    std::string &error);

} // namespace llmc::artifact

#endif // LLMC_RUNTIME_ARTIFACT_WRITER_H
