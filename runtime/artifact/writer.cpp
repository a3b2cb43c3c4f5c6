// Serializes the flatbuffer, lays out aligned weight segments and writes them.
#include "runtime/artifact/writer.h"

#include "runtime/artifact/format.h"

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <unistd.h>

namespace llmc::artifact {

namespace {

uint64_t alignUp(uint64_t x, uint64_t a) { return (x + a - 1) / a * a; }

bool writeAll(std::FILE *f, const void *data, size_t size) {
  return size == 0 || std::fwrite(data, 1, size, f) == size;
}

bool writePadding(std::FILE *f, uint64_t bytes) {
  static const char zeros[4096] = {};
  while (bytes > 0) {
    size_t n = bytes < sizeof zeros ? static_cast<size_t>(bytes) : sizeof zeros;
    if (!writeAll(f, zeros, n)) {
      return false;
    }
    bytes -= n;
  }
  return true;
}

/// Writes the artifact at the current end of `f`; returns its size, or 0.
uint64_t writeArtifact(std::FILE *f, const Contents &c) {
  // One segment with every tensor, each tensor aligned within it.
  std::vector<uint64_t> offsets;
  uint64_t segSize = 0;
  for (const WriterTensor &t : c.tensors) {
    segSize = alignUp(segSize, kSegmentAlign);
    offsets.push_back(segSize);
    segSize += t.size;
  }
  flatbuffers::FlatBufferBuilder fbb;
  std::vector<flatbuffers::Offset<fb::Tensor>> tensors;
  for (size_t i = 0; i < c.tensors.size(); ++i) {
    const WriterTensor &t = c.tensors[i];
    tensors.push_back(fb::CreateTensorDirect(fbb, t.name.c_str(), t.format,
                                             t.groupSize, t.asymmetric,
                                             &t.shape, 0, offsets[i], t.size,
                                             c.syntheticWeights
                                                 ? 0
                                                 : hash64(t.data, t.size)));
  }
  std::vector<flatbuffers::Offset<fb::Segment>> segOffsets = {
      fb::CreateSegment(fbb, 0, segSize, c.syntheticWeights,
                        c.syntheticWeights ? c.syntheticSeed : 0)};
  auto config = fb::CreateModelConfig(fbb, &c.config);
  // A module compiled from .mlir has no tokenizer: leave the table out.
  auto tokenizer = c.tokenizer.pieces.empty()
                       ? flatbuffers::Offset<fb::Tokenizer>()
                       : fb::CreateTokenizer(fbb, &c.tokenizer);
  auto build = fb::CreateBuildInfo(fbb, &c.build);
  flatbuffers::Offset<fb::Program> program = 0;
  if (!c.program.ops.empty()) {
    std::vector<flatbuffers::Offset<fb::Op>> ops;
    for (const eval::Op &o : c.program.ops) {
      ops.push_back(fb::CreateOpDirect(
          fbb, static_cast<fb::OpKind>(o.kind), &o.inputs, &o.results,
          &o.widths, o.weight, o.bias, o.heads, o.kvHeads, o.headDim, o.layer,
          o.eps, o.theta, o.norm, o.swigluBlock));
    }
    std::vector<flatbuffers::Offset<fb::CacheLayer>> cache;
    for (const llmc_cache_layer &l : c.program.cache) {
      cache.push_back(fb::CreateCacheLayer(fbb, l.kv_heads, l.head_dim));
    }
    program = fb::CreateProgramDirect(fbb, &ops, c.program.numValues,
                                      c.program.output, &cache);
  }
  auto root = fb::CreateArtifact(fbb, config, tokenizer,
                                 fbb.CreateVector(tensors),
                                 fbb.CreateVector(segOffsets), build,
                                 c.programFingerprint, program);
  fb::FinishArtifactBuffer(fbb, root);

  FileHeader h{};
  std::memcpy(h.magic, kFileMagic, 8);
  h.version = kFormatVersion;
  h.header_size = sizeof(FileHeader);
  h.flatbuffer_offset = sizeof(FileHeader);
  h.flatbuffer_size = fbb.GetSize();
  h.segment_base = alignUp(h.flatbuffer_offset + h.flatbuffer_size, kPageAlign);
  h.total_size = h.segment_base + (c.syntheticWeights ? 0 : segSize);
  h.meta_checksum = 0;
  h.meta_checksum =
      hash64(&h, sizeof h, hash64(fbb.GetBufferPointer(), fbb.GetSize()));

  if (!writeAll(f, &h, sizeof h) ||
      !writeAll(f, fbb.GetBufferPointer(), fbb.GetSize()) ||
      !writePadding(f, h.segment_base - h.flatbuffer_offset - h.flatbuffer_size)) {
    return 0;
  }
  uint64_t pos = 0;
  for (size_t i = 0; !c.syntheticWeights && i < c.tensors.size(); ++i) {
    if (!writePadding(f, offsets[i] - pos) ||
        !writeAll(f, c.tensors[i].data, c.tensors[i].size)) {
      return 0;
    }
    pos = offsets[i] + c.tensors[i].size;
  }
  return h.total_size;
}

} // namespace

bool writeArtifactFile(const std::string &path, const Contents &c,
                       std::string &error) {
  std::string tmp = path + ".tmp" + std::to_string(::getpid());
  std::FILE *f = std::fopen(tmp.c_str(), "wb");
  if (!f) {
    error = path + ": cannot write: " + std::strerror(errno);
    return false;
  }
  uint64_t n = writeArtifact(f, c);
  bool ok = n != 0 && std::fflush(f) == 0;
  ok = (std::fclose(f) == 0) && ok;
  if (!ok || std::rename(tmp.c_str(), path.c_str()) != 0) {
    error = path + ": cannot write: " + std::strerror(errno);
    std::remove(tmp.c_str());
    return false;
  }
  return true;
}

bool appendArtifact(const std::string &path, const Contents &c,
                    std::string &error) {
  std::FILE *f = std::fopen(path.c_str(), "ab");
  if (!f) {
    error = path + ": cannot append the artifact: " + std::strerror(errno);
    return false;
  }
  bool ok = std::fseek(f, 0, SEEK_END) == 0;
  long end = std::ftell(f);
  ok = ok && end >= 0;
  uint64_t start = alignUp(static_cast<uint64_t>(end), kPageAlign);
  ok = ok && writePadding(f, start - static_cast<uint64_t>(end));
  uint64_t size = ok ? writeArtifact(f, c) : 0;
  ok = ok && size != 0;
  if (ok) {
    Trailer t{};
    std::memcpy(t.magic, kTrailerMagic, 8);
    t.artifact_offset = start;
    t.artifact_size = size;
    t.checksum = hash64(&t, offsetof(Trailer, checksum));
    ok = writeAll(f, &t, sizeof t);
  }
  ok = (std::fclose(f) == 0) && ok;
  if (!ok) {
    error = path + ": cannot append the artifact: " + std::strerror(errno);
  }
  return ok;
}

} // namespace llmc::artifact
