// Serializes tensor signatures canonically and hashes them.
#include "runtime/artifact/fingerprint.h"

#include "runtime/artifact/format.h"

#include <cstring>

namespace llmc::artifact {

uint64_t tensorTableFingerprint(const std::vector<TensorSignature> &tensors) {
  std::string bytes;
  auto put = [&](const void *p, size_t n) {
    bytes.append(static_cast<const char *>(p), n);
  };
  for (const TensorSignature &t : tensors) {
    bytes += t.name;
    bytes.push_back('\0');
    put(&t.format, 4);
    put(&t.groupSize, 4);
    bytes.push_back(t.asymmetric ? 1 : 0);
    uint32_t rank = static_cast<uint32_t>(t.shape.size());
    put(&rank, 4);
    for (int64_t d : t.shape) {
      put(&d, 8);
    }
  }
  uint64_t h = hash64(bytes.data(), bytes.size(), 0x6C6C6D63);
  return h == 0 ? 1 : h; // 0 means "any table" in llmc_program
}

} // namespace llmc::artifact
