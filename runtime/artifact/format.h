// Byte layout of an llmc artifact file and of the trailer that finds one appended to an executable.
//
//   [FileHeader 64 B][flatbuffer (schema/artifact.fbs)][pad][segment 0][pad][segment 1]...
//
// Segment offsets are relative to `segment_base`, itself a multiple of
// kSegmentAlign from the artifact's start; an artifact appended to an
// executable starts at a page boundary, so every segment can be mmap'ed and
// read with aligned SIMD loads.
#ifndef LLMC_RUNTIME_ARTIFACT_FORMAT_H
#define LLMC_RUNTIME_ARTIFACT_FORMAT_H

#include <cstddef>
#include <cstdint>

namespace llmc::artifact {

constexpr char kFileMagic[8] = {'L', 'L', 'M', 'C', 'A', 'R', 'T', '\0'};
constexpr char kTrailerMagic[8] = {'L', 'L', 'M', 'C', 'T', 'R', 'L', '\0'};
constexpr uint32_t kFormatVersion = 1;
constexpr uint64_t kSegmentAlign = 64;
constexpr uint64_t kPageAlign = 4096;

struct FileHeader {
  char magic[8];
  uint32_t version;
  uint32_t header_size;        // sizeof(FileHeader)
  uint64_t flatbuffer_offset;  // from the artifact's start
  uint64_t flatbuffer_size;
  uint64_t segment_base;       // from the artifact's start
  uint64_t total_size;         // bytes of the whole artifact
  uint64_t meta_checksum;      // hash64 of this header (checksum field zero) and the flatbuffer
  uint64_t reserved;
};
static_assert(sizeof(FileHeader) == 64, "FileHeader is 64 bytes on disk");

/// The last 32 bytes of an executable that carries its artifact.
struct Trailer {
  char magic[8];
  uint64_t artifact_offset;  // from the start of the executable file
  uint64_t artifact_size;
  uint64_t checksum;         // hash64 of the 24 bytes before it
};
static_assert(sizeof(Trailer) == 32, "Trailer is 32 bytes on disk");

/// A fast 64-bit non-cryptographic hash, for detecting corruption.
uint64_t hash64(const void *data, size_t size, uint64_t seed = 0);

} // namespace llmc::artifact

#endif // LLMC_RUNTIME_ARTIFACT_FORMAT_H
