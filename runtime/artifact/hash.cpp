// hash64: a word-at-a-time multiply-xorshift hash (detects corruption, not attacks).
#include "runtime/artifact/format.h"

#include <cstring>

namespace llmc::artifact {

namespace {
constexpr uint64_t kMul = 0x9E3779B97F4A7C15ull;

inline uint64_t mix(uint64_t h) {
  h ^= h >> 32;
  h *= 0xD6E8FEB86659FD93ull;
  h ^= h >> 32;
  return h;
}
} // namespace

uint64_t hash64(const void *data, size_t size, uint64_t seed) {
  const unsigned char *p = static_cast<const unsigned char *>(data);
  // Four independent lanes keep the multiplier pipelines busy.
  uint64_t h[4] = {seed ^ 0x243F6A8885A308D3ull, seed ^ 0x13198A2E03707344ull,
                   seed ^ 0xA4093822299F31D0ull, seed ^ 0x082EFA98EC4E6C89ull};
  size_t i = 0;
  for (; i + 32 <= size; i += 32) {
    for (int l = 0; l < 4; ++l) {
      uint64_t w;
      std::memcpy(&w, p + i + 8 * l, 8);
      h[l] = (h[l] ^ w) * kMul;
      h[l] ^= h[l] >> 29;
    }
  }
  uint64_t tail = 0;
  size_t rest = size - i;
  for (; i + 8 <= size; i += 8) {
    uint64_t w;
    std::memcpy(&w, p + i, 8);
    h[0] = mix(h[0] ^ w);
  }
  for (size_t k = 0; i < size; ++i, ++k) {
    tail |= static_cast<uint64_t>(p[i]) << (8 * k);
  }
  uint64_t r = mix(h[0] ^ tail) ^ mix(h[1] + rest) ^ mix(h[2] * kMul) ^
               mix(h[3] ^ size);
  return mix(r);
}

} // namespace llmc::artifact
