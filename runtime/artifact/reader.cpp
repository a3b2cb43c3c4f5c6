// The artifact loader: mmap, trailer lookup, header and checksum checks, flatbuffers Verifier, bounds checks.
#include "runtime/artifact/reader.h"

#include "llmc/program.h"

#include "runtime/artifact/format.h"
#include "runtime/kernels/quant.h"

#include <cerrno>
#include <cstring>
#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

// The schema's storage formats are the ABI's (llmc/program.h).
static_assert(static_cast<int>(llmc::fb::StorageFormat::F32) == LLMC_FORMAT_F32);
static_assert(static_cast<int>(llmc::fb::StorageFormat::F16) == LLMC_FORMAT_F16);
static_assert(static_cast<int>(llmc::fb::StorageFormat::BF16) == LLMC_FORMAT_BF16);
static_assert(static_cast<int>(llmc::fb::StorageFormat::Q8) == LLMC_FORMAT_Q8);
static_assert(static_cast<int>(llmc::fb::StorageFormat::Q4) == LLMC_FORMAT_Q4);
static_assert(static_cast<int>(llmc::fb::StorageFormat::S24) == LLMC_FORMAT_S24);
static_assert(static_cast<int>(llmc::fb::StorageFormat::S24Q8) == LLMC_FORMAT_S24Q8);
static_assert(static_cast<int>(llmc::fb::StorageFormat::S24Q4) == LLMC_FORMAT_S24Q4);
static_assert(static_cast<int>(llmc::fb::StorageFormat::Q8X8) == LLMC_FORMAT_Q8X8);
static_assert(static_cast<int>(llmc::fb::StorageFormat::Q4X8) == LLMC_FORMAT_Q4X8);
static_assert(static_cast<int>(llmc::fb::StorageFormat::F16X16) == LLMC_FORMAT_F16X16);
static_assert(static_cast<int>(llmc::fb::StorageFormat::MAX) == LLMC_FORMAT_F16X16,
              "a new storage format needs an LLMC_FORMAT_* number");

namespace llmc::artifact {

uint64_t storageBytes(fb::StorageFormat format, uint64_t numElements,
                      int64_t rowLength, int32_t groupSize, bool asymmetric) {
  switch (format) {
  case fb::StorageFormat::F32:
    return numElements * 4;
  case fb::StorageFormat::F16:
  case fb::StorageFormat::BF16:
  case fb::StorageFormat::F16X16:
    return numElements * 2;
  case fb::StorageFormat::S24:
  case fb::StorageFormat::S24Q8:
  case fb::StorageFormat::S24Q4: {
    if (groupSize != 0 || asymmetric || rowLength <= 0) {
      return 0;
    }
    uint64_t rows = numElements / static_cast<uint64_t>(rowLength);
    uint64_t bytes;
    if (__builtin_mul_overflow(
            rows,
            kernels::sparseRowBytes(static_cast<int32_t>(format), rowLength),
            &bytes)) {
      return 0;
    }
    return bytes;
  }
  case fb::StorageFormat::Q8:
  case fb::StorageFormat::Q4:
  case fb::StorageFormat::Q8X8:
  case fb::StorageFormat::Q4X8: {
    // The interleaved formats hold the same bytes as q8/q4, reordered.
    if (groupSize <= 0 || groupSize % 32 != 0 || groupSize > (1 << 16) ||
        rowLength <= 0 || (asymmetric && format != fb::StorageFormat::Q4)) {
      return 0;
    }
    // Rows are padded to whole groups (see kernels/quant.h).
    uint64_t rows = numElements / static_cast<uint64_t>(rowLength);
    uint64_t groups = (static_cast<uint64_t>(rowLength) + groupSize - 1) /
                      static_cast<uint64_t>(groupSize);
    uint64_t block = format == fb::StorageFormat::Q8 ||
                             format == fb::StorageFormat::Q8X8
                         ? 2 + static_cast<uint64_t>(groupSize)
                         : (asymmetric ? 4 : 2) + static_cast<uint64_t>(groupSize) / 2;
    uint64_t blocks, bytes;
    if (__builtin_mul_overflow(rows, groups, &blocks) ||
        __builtin_mul_overflow(blocks, block, &bytes)) {
      return 0;
    }
    return bytes;
  }
  }
  return 0;
}

namespace {

struct Fd {
  int fd = -1;
  ~Fd() {
    if (fd >= 0) {
      ::close(fd);
    }
  }
};

} // namespace

std::unique_ptr<Reader> Reader::open(const std::string &path,
                                     std::string &error, bool verifyWeights) {
  auto fail = [&](const std::string &what) {
    error = path + ": " + what;
    return nullptr;
  };
  Fd f;
  f.fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (f.fd < 0) {
    return fail(std::string("cannot open: ") + std::strerror(errno));
  }
  struct stat st;
  if (::fstat(f.fd, &st) != 0) {
    return fail(std::string("cannot stat: ") + std::strerror(errno));
  }
  const uint64_t fileSize = static_cast<uint64_t>(st.st_size);

  // A bare artifact starts with the file magic; otherwise look for a trailer.
  uint64_t offset = 0, size = fileSize;
  char magic[8] = {};
  if (fileSize < sizeof(FileHeader) ||
      ::pread(f.fd, magic, 8, 0) != 8) {
    return fail("truncated: " + std::to_string(fileSize) +
                " bytes is too short for an llmc artifact");
  }
  if (std::memcmp(magic, kFileMagic, 8) != 0) {
    Trailer t;
    if (::pread(f.fd, &t, sizeof t, static_cast<off_t>(fileSize - sizeof t)) !=
            static_cast<ssize_t>(sizeof t) ||
        std::memcmp(t.magic, kTrailerMagic, 8) != 0) {
      return fail("not an llmc artifact, and carries no appended artifact "
                  "(no trailer at the end of the file; was it truncated?)");
    }
    if (t.checksum != hash64(&t, offsetof(Trailer, checksum))) {
      return fail("the artifact trailer is corrupt (checksum mismatch)");
    }
    if (t.artifact_offset % kPageAlign != 0 ||
        t.artifact_offset > fileSize - sizeof t ||
        t.artifact_size > fileSize - sizeof t - t.artifact_offset) {
      return fail("the trailer places the artifact at bytes " +
                  std::to_string(t.artifact_offset) + "+" +
                  std::to_string(t.artifact_size) + ", outside the " +
                  std::to_string(fileSize) + "-byte file (truncated?)");
    }
    offset = t.artifact_offset;
    size = t.artifact_size;
    if (size < sizeof(FileHeader)) {
      return fail("the appended artifact is truncated");
    }
  }

  std::unique_ptr<Reader> r(new Reader());
  r->path_ = path;
  r->fileOffset_ = offset;
  r->size_ = size;
  r->mapSize_ = size;
  r->map_ = ::mmap(nullptr, size, PROT_READ, MAP_PRIVATE, f.fd,
                   static_cast<off_t>(offset));
  if (r->map_ == MAP_FAILED) {
    r->map_ = nullptr;
    return fail(std::string("cannot mmap: ") + std::strerror(errno));
  }
  r->base_ = static_cast<const uint8_t *>(r->map_);

  FileHeader h;
  std::memcpy(&h, r->base_, sizeof h);
  if (std::memcmp(h.magic, kFileMagic, 8) != 0) {
    return fail("bad artifact magic");
  }
  if (h.version != kFormatVersion) {
    return fail("artifact format version " + std::to_string(h.version) +
                " is not supported (this runtime reads version " +
                std::to_string(kFormatVersion) + ")");
  }
  if (h.header_size != sizeof(FileHeader) || h.total_size != size) {
    return fail("artifact header claims " + std::to_string(h.total_size) +
                " bytes but " + std::to_string(size) +
                " are present (truncated?)");
  }
  if (h.flatbuffer_offset < sizeof(FileHeader) || h.flatbuffer_offset > size ||
      h.flatbuffer_size > size - h.flatbuffer_offset || h.flatbuffer_size < 8 ||
      h.segment_base > size || h.segment_base % kSegmentAlign != 0) {
    return fail("artifact header offsets are out of range");
  }
  FileHeader zeroed = h;
  zeroed.meta_checksum = 0;
  uint64_t sum = hash64(&zeroed, sizeof zeroed,
                        hash64(r->base_ + h.flatbuffer_offset, h.flatbuffer_size));
  if (sum != h.meta_checksum) {
    return fail("artifact metadata is corrupt (checksum mismatch)");
  }

  const uint8_t *fbuf = r->base_ + h.flatbuffer_offset;
  flatbuffers::Verifier verifier(fbuf, h.flatbuffer_size);
  // The verifier checks the file identifier too, within bounds.
  if (!fb::VerifyArtifactBuffer(verifier)) {
    return fail("artifact flatbuffer failed verification");
  }
  r->root_ = fb::GetArtifact(fbuf);

  // Segments lie after segment_base and inside the artifact.
  const uint64_t segSpace = size - h.segment_base;
  const auto *segments = r->root_->segments();
  for (flatbuffers::uoffset_t i = 0; i < segments->size(); ++i) {
    const fb::Segment *s = segments->Get(i);
    if (s->synthetic()) {
      // Not in the file; its tensors are bounds-checked against its size.
      r->synthetic_ = true;
      r->syntheticSeed_ = s->synthetic_seed();
      continue;
    }
    if (s->offset() > segSpace || s->size() > segSpace - s->offset() ||
        s->offset() % kSegmentAlign != 0) {
      return fail("segment " + std::to_string(i) +
                  " lies outside the artifact (truncated?)");
    }
  }

  for (const fb::Tensor *t : *r->root_->tensors()) {
    const std::string name = t->name()->str();
    TensorRef ref;
    ref.name = std::string_view(t->name()->c_str(), t->name()->size());
    ref.format = t->format();
    ref.groupSize = t->group_size();
    ref.asymmetric = t->asymmetric();
    uint64_t numel = 1;
    for (int64_t d : *t->shape()) {
      if (d <= 0 || numel > (uint64_t(1) << 48) / static_cast<uint64_t>(d)) {
        return fail("tensor '" + name + "' has an invalid shape");
      }
      numel *= static_cast<uint64_t>(d);
      ref.shape.push_back(d);
    }
    if (ref.shape.empty()) {
      return fail("tensor '" + name + "' has no shape");
    }
    uint64_t expected = storageBytes(ref.format, numel, ref.shape.back(),
                                     ref.groupSize, ref.asymmetric);
    if (expected == 0 || expected != t->size()) {
      return fail("tensor '" + name + "' holds " + std::to_string(t->size()) +
                  " bytes, but its format and shape need " +
                  std::to_string(expected));
    }
    if (t->segment() >= segments->size()) {
      return fail("tensor '" + name + "' names a missing segment");
    }
    const fb::Segment *s = segments->Get(t->segment());
    if (t->offset() > s->size() || t->size() > s->size() - t->offset()) {
      return fail("tensor '" + name + "' lies outside its segment");
    }
    ref.size = t->size();
    if (s->synthetic()) {
      ref.data = nullptr; // filled where it runs (runtime/core/synth.h)
      if (t->offset() % 64 != 0) {
        return fail("tensor '" + name + "' is misaligned");
      }
      r->tensors_.push_back(std::move(ref));
      continue;
    }
    ref.data = r->base_ + h.segment_base + s->offset() + t->offset();
    if (verifyWeights && hash64(ref.data, ref.size) != t->checksum()) {
      return fail("tensor '" + name + "' is corrupt (checksum mismatch)");
    }
    if (reinterpret_cast<uintptr_t>(ref.data) % 4 != 0) {
      return fail("tensor '" + name + "' is misaligned");
    }
    r->tensors_.push_back(std::move(ref));
  }
  return r;
}

Reader::~Reader() {
  if (map_) {
    ::munmap(map_, mapSize_);
  }
}

const TensorRef *Reader::find(std::string_view name) const {
  for (const TensorRef &t : tensors_) {
    if (t.name == name) {
      return &t;
    }
  }
  return nullptr;
}

uint64_t Reader::weightBytes() const {
  uint64_t n = 0;
  for (const fb::Segment *s : *root_->segments()) {
    n += s->size();
  }
  return n;
}

} // namespace llmc::artifact
