// Round-to-nearest quantization of weight rows and activations, and dequantization.
#include "runtime/kernels/quant.h"

#include "runtime/kernels/kernels.h"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <vector>

namespace llmc::kernels {

namespace {

void packNibbles(const uint8_t *n, int64_t g, uint8_t *qs) {
  for (int64_t s = 0; s < g / kQuantSubBlock; ++s) {
    for (int i = 0; i < 16; ++i) {
      qs[s * 16 + i] = static_cast<uint8_t>(n[s * 32 + i] | (n[s * 32 + i + 16] << 4));
    }
  }
}

void unpackNibbles(const uint8_t *qs, int64_t g, uint8_t *n) {
  for (int64_t s = 0; s < g / kQuantSubBlock; ++s) {
    for (int i = 0; i < 16; ++i) {
      n[s * 32 + i] = qs[s * 16 + i] & 0x0F;
      n[s * 32 + i + 16] = qs[s * 16 + i] >> 4;
    }
  }
}

} // namespace

namespace {

/// max |x[i]| in eight independent lanes (the compiler keeps them in one
/// vector register); max is order-free, so the result is the plain loop's.
float absMax(const float *x, int64_t len) {
  float lane[8] = {};
  int64_t i = 0;
  for (; i + 8 <= len; i += 8) {
    for (int j = 0; j < 8; ++j) {
      float a = std::fabs(x[i + j]);
      lane[j] = lane[j] > a ? lane[j] : a;
    }
  }
  float amax = 0.0f;
  for (; i < len; ++i) {
    amax = std::max(amax, std::fabs(x[i]));
  }
  for (float l : lane) {
    amax = std::max(amax, l);
  }
  return amax;
}

/// nearbyint for |y| <= 2^22 in the default rounding mode (to nearest,
/// ties to even): adding and subtracting 1.5 * 2^23 drops the fraction. The
/// callers clamp first, which commutes with rounding to integer bounds.
inline float roundEven(float y) {
  constexpr float kMagic = 12582912.0f;
  return (y + kMagic) - kMagic;
}

} // namespace

GroupParams groupParams(const float *x, int64_t len, int32_t format,
                        bool asym) {
  GroupParams p;
  if (format == LLMC_FORMAT_Q8) {
    p.dBits = floatToHalf(absMax(x, len) / 127.0f);
  } else if (!asym) {
    // The first element of largest magnitude, with its sign.
    const float amax = absMax(x, len);
    float extreme = 0.0f;
    for (int64_t i = 0; i < len; ++i) {
      if (std::fabs(x[i]) == amax) {
        extreme = x[i];
        break;
      }
    }
    p.dBits = floatToHalf(extreme / -8.0f);
  } else {
    float mn = len > 0 ? x[0] : 0.0f, mx = mn;
    for (int64_t i = 0; i < len; ++i) {
      mn = std::min(mn, x[i]);
      mx = std::max(mx, x[i]);
    }
    p.dBits = floatToHalf((mx - mn) / 15.0f);
    p.mBits = floatToHalf(mn);
  }
  p.d = halfToFloat(p.dBits);
  p.m = halfToFloat(p.mBits);
  return p;
}

int quantCode(float v, const GroupParams &p, int32_t format, bool asym) {
  float inv = p.d != 0.0f ? 1.0f / p.d : 0.0f;
  if (format == LLMC_FORMAT_Q8) {
    return static_cast<int>(std::clamp(std::nearbyint(v * inv), -127.0f, 127.0f));
  }
  if (!asym) {
    return static_cast<int>(std::clamp(std::nearbyint(v * inv) + 8.0f, 0.0f, 15.0f));
  }
  return static_cast<int>(std::clamp(std::nearbyint((v - p.m) * inv), 0.0f, 15.0f));
}

float dequantCode(int code, const GroupParams &p, int32_t format, bool asym) {
  if (format == LLMC_FORMAT_Q8) {
    return p.d * static_cast<float>(code);
  }
  return asym ? p.d * static_cast<float>(code) + p.m
              : p.d * static_cast<float>(code - 8);
}

void packGroup(const int *codes, int64_t group, const GroupParams &p,
               int32_t format, bool asym, uint8_t *block) {
  std::memcpy(block, &p.dBits, 2);
  if (format == LLMC_FORMAT_Q8) {
    for (int64_t i = 0; i < group; ++i) {
      block[2 + i] = static_cast<uint8_t>(static_cast<int8_t>(codes[i]));
    }
    return;
  }
  if (asym) {
    std::memcpy(block + 2, &p.mBits, 2);
  }
  std::vector<uint8_t> nib(static_cast<size_t>(group));
  for (int64_t i = 0; i < group; ++i) {
    nib[i] = static_cast<uint8_t>(codes[i]);
  }
  packNibbles(nib.data(), group, block + (asym ? 4 : 2));
}

void quantizeRow(const float *x, int64_t k, int32_t format, int64_t group,
                 bool asym, uint8_t *out) {
  // The codes of quantCode and the layout of packGroup, written straight
  // into each block with no buffer: this runs on every weight of a model at
  // compile time (6.7e9 of them at 7B). QuantTest holds it to the
  // element-wise definition.
  const size_t blockBytes = quantBlockBytes(format, group, asym);
  const bool q8 = format == LLMC_FORMAT_Q8;
  for (int64_t g0 = 0; g0 < k; g0 += group) {
    const int64_t len = std::min(group, k - g0);
    const float *xg = x + g0;
    const GroupParams p = groupParams(xg, len, format, asym);
    const float inv = p.d != 0.0f ? 1.0f / p.d : 0.0f;
    uint8_t *blk = out + (g0 / group) * blockBytes;
    std::memcpy(blk, &p.dBits, 2);
    if (q8) {
      int8_t *q = reinterpret_cast<int8_t *>(blk + 2);
      for (int64_t i = 0; i < len; ++i) {
        q[i] = static_cast<int8_t>(
            roundEven(std::clamp(xg[i] * inv, -127.0f, 127.0f)));
      }
      std::memset(q + len, 0, static_cast<size_t>(group - len));
      continue;
    }
    if (asym) {
      std::memcpy(blk + 2, &p.mBits, 2);
    }
    uint8_t *qs = blk + (asym ? 4 : 2);
    const float lo = asym ? 0.0f : -8.0f, hi = asym ? 15.0f : 7.0f;
    // Symmetric: m = 0, and (x - 0) * inv is x * inv exactly.
    const float shift = asym ? 0.0f : 8.0f, m = asym ? p.m : 0.0f;
    const uint8_t pad = static_cast<uint8_t>(paddingCode(format, asym));
    auto code = [&](float v) {
      return static_cast<uint8_t>(roundEven(std::clamp((v - m) * inv, lo, hi)) + shift);
    };
    for (int64_t s = 0; s < group / kQuantSubBlock; ++s) {
      const int64_t i0 = s * kQuantSubBlock;
      for (int i = 0; i < 16; ++i) {
        // A full group (all but a row's last) takes no padding branch.
        const uint8_t c0 = len == group || i0 + i < len ? code(xg[i0 + i]) : pad;
        const uint8_t c1 =
            len == group || i0 + i + 16 < len ? code(xg[i0 + i + 16]) : pad;
        qs[s * 16 + i] = static_cast<uint8_t>(c0 | (c1 << 4));
      }
    }
  }
}

void dequantizeRow(const uint8_t *row, int64_t k, int32_t format, int64_t group,
                   bool asym, float *out) {
  const size_t blockBytes = quantBlockBytes(format, group, asym);
  std::vector<uint8_t> nib(static_cast<size_t>(group));
  for (int64_t g0 = 0; g0 < k; g0 += group) {
    int64_t len = std::min(group, k - g0);
    const uint8_t *blk = row + (g0 / group) * blockBytes;
    uint16_t dh;
    std::memcpy(&dh, blk, 2);
    float d = halfToFloat(dh);
    if (format == LLMC_FORMAT_Q8) {
      const int8_t *q = reinterpret_cast<const int8_t *>(blk + 2);
      for (int64_t i = 0; i < len; ++i) {
        out[g0 + i] = d * q[i];
      }
    } else if (!asym) {
      unpackNibbles(blk + 2, group, nib.data());
      for (int64_t i = 0; i < len; ++i) {
        out[g0 + i] = d * (static_cast<int>(nib[i]) - 8);
      }
    } else {
      uint16_t mh;
      std::memcpy(&mh, blk + 2, 2);
      float m = halfToFloat(mh);
      unpackNibbles(blk + 4, group, nib.data());
      for (int64_t i = 0; i < len; ++i) {
        out[g0 + i] = d * nib[i] + m;
      }
    }
  }
}

void quantizeActivations(const float *x, int64_t k, int64_t blocks,
                         ActBlock *out) {
  for (int64_t b = 0; b < blocks; ++b) {
    int64_t len = std::clamp<int64_t>(k - b * kQuantSubBlock, 0, kQuantSubBlock);
    const float *xb = x + b * kQuantSubBlock;
    float amax = 0.0f;
    for (int64_t i = 0; i < len; ++i) {
      amax = std::max(amax, std::fabs(xb[i]));
    }
    float d = amax / 127.0f;
    float inv = d != 0.0f ? 1.0f / d : 0.0f;
    int sum = 0;
    for (int64_t i = 0; i < kQuantSubBlock; ++i) {
      // Round to nearest even, as nearbyint in the default mode, without a
      // libm call: |xb[i] * inv| <= 127, so adding 1.5 * 2^23 leaves the
      // rounded integer in the low mantissa bits.
      constexpr float kRound = 12582912.0f;
      int q = i < len ? static_cast<int>((xb[i] * inv + kRound) - kRound) : 0;
      out[b].q[i] = static_cast<int8_t>(q);
      sum += q;
    }
    out[b].d = d;
    out[b].sum = d * static_cast<float>(sum);
  }
}

namespace {

/// The index bytes of a block: at its end in every 2:4 format.
const uint8_t *sparseIdx(const uint8_t *block, int32_t format) {
  return block + sparseBlockBytes(format) - 4;
}

} // namespace

int sparseColumn(const uint8_t *block, int32_t format, int lane) {
  const uint8_t *idx = sparseIdx(block, format);
  int g = lane / 2;
  int nib = (idx[g / 2] >> (g % 2 ? 4 : 0)) & 0xF;
  return g * 4 + ((nib >> (2 * (lane % 2))) & 3);
}

float sparseValue(const uint8_t *block, int32_t format, int lane) {
  uint16_t h;
  if (format == LLMC_FORMAT_S24) {
    std::memcpy(&h, block + 2 * lane, 2);
    return halfToFloat(h);
  }
  std::memcpy(&h, block, 2);
  const float d = halfToFloat(h);
  if (format == LLMC_FORMAT_S24Q8) {
    return d * static_cast<float>(static_cast<int8_t>(block[2 + lane]));
  }
  const uint8_t b = block[2 + lane / 2];
  return d * static_cast<float>(((lane % 2 ? b >> 4 : b) & 0xF) - 8);
}

bool packSparseRow(const float *x, int64_t k, int32_t format, uint8_t *out) {
  const int64_t blocks = (k + kS24Columns - 1) / kS24Columns;
  const size_t bytes = sparseBlockBytes(format);
  for (int64_t b = 0; b < blocks; ++b) {
    uint8_t *blk = out + b * bytes;
    std::memset(blk, 0, bytes);
    uint8_t *idx = blk + bytes - 4;
    float vals[16];
    for (int g = 0; g < kS24Columns / 4; ++g) {
      int pos[2] = {0, 1}, kept = 0;
      for (int i = 0; i < 4; ++i) {
        int64_t c = b * kS24Columns + g * 4 + i;
        float v = c < k ? x[c] : 0.0f;
        if (v != 0.0f) {
          if (kept == 2) {
            return false;
          }
          pos[kept++] = i;
        }
      }
      // Fewer than two non-zeros: fill with zero-valued positions, kept in
      // increasing order.
      if (kept == 1 && pos[0] == 3) {
        pos[1] = 3, pos[0] = 2;
      } else if (kept == 1) {
        pos[1] = pos[0] + 1;
      }
      for (int j = 0; j < 2; ++j) {
        int64_t c = b * kS24Columns + g * 4 + pos[j];
        vals[g * 2 + j] = c < k ? x[c] : 0.0f;
      }
      uint8_t nib = static_cast<uint8_t>(pos[0] | (pos[1] << 2));
      idx[g / 2] |= static_cast<uint8_t>(g % 2 ? nib << 4 : nib);
    }
    if (format == LLMC_FORMAT_S24) {
      for (int j = 0; j < 16; ++j) {
        uint16_t h = floatToHalf(vals[j]);
        std::memcpy(blk + 2 * j, &h, 2);
      }
      continue;
    }
    // Round to nearest with the quantized formats' own group parameters.
    const int32_t q = format == LLMC_FORMAT_S24Q8 ? LLMC_FORMAT_Q8 : LLMC_FORMAT_Q4;
    const GroupParams p = groupParams(vals, 16, q, false);
    std::memcpy(blk, &p.dBits, 2);
    for (int j = 0; j < 16; ++j) {
      int code = quantCode(vals[j], p, q, false);
      if (q == LLMC_FORMAT_Q8) {
        blk[2 + j] = static_cast<uint8_t>(static_cast<int8_t>(code));
      } else {
        blk[2 + j / 2] |= static_cast<uint8_t>(j % 2 ? code << 4 : code);
      }
    }
  }
  return true;
}

void unpackSparseRow(const uint8_t *row, int64_t k, int32_t format, float *out) {
  for (int64_t c = 0; c < k; ++c) {
    out[c] = 0.0f;
  }
  const int64_t blocks = (k + kS24Columns - 1) / kS24Columns;
  const size_t bytes = sparseBlockBytes(format);
  for (int64_t b = 0; b < blocks; ++b) {
    const uint8_t *blk = row + b * bytes;
    for (int lane = 0; lane < 16; ++lane) {
      int64_t c = b * kS24Columns + sparseColumn(blk, format, lane);
      if (c < k) {
        out[c] = sparseValue(blk, format, lane);
      }
    }
  }
}

} // namespace llmc::kernels

namespace llmc::kernels {

namespace {

/// Calls fn(rowByteOffset, interleavedByteOffset, bytes) for every piece of
/// row `r` of an interleaved matrix (a scale or a sub-block's codes).
template <typename Fn>
void forEachPiece(int64_t rows, int64_t k, int32_t interleaved, int64_t group,
                  int64_t r, Fn fn) {
  const int32_t base = rowFormat(interleaved);
  const size_t rowBytes = quantRowBytes(base, k, group, false);
  const size_t blockBytes = quantBlockBytes(base, group, false);
  const int64_t full = rows / kInterleaveRows * kInterleaveRows;
  if (r >= full) {
    fn(0, full * rowBytes + (r - full) * rowBytes, rowBytes);
    return;
  }
  const size_t piece = base == LLMC_FORMAT_Q8 ? kQuantSubBlock : kQuantSubBlock / 2;
  const int64_t i = r % kInterleaveRows, sub = group / kQuantSubBlock;
  const size_t rowGroup = (r / kInterleaveRows) * kInterleaveRows * rowBytes;
  const int64_t blocks = (k + group - 1) / group;
  for (int64_t c = 0; c < blocks; ++c) {
    const size_t chunk = rowGroup + c * kInterleaveRows * blockBytes;
    fn(c * blockBytes, chunk + i * 2, 2);
    for (int64_t s = 0; s < sub; ++s) {
      for (size_t h = 0; h < piece / kInterleavePiece; ++h) {
        fn(c * blockBytes + 2 + s * piece + h * kInterleavePiece,
           chunk + 2 * kInterleaveRows + s * kInterleaveRows * piece +
               (h * kInterleaveRows + i) * kInterleavePiece,
           kInterleavePiece);
      }
    }
  }
}

} // namespace

void interleaveRows(const uint8_t *in, int64_t rows, int64_t k,
                    int32_t interleaved, int64_t group, uint8_t *out) {
  const size_t rowBytes = quantRowBytes(interleaved, k, group, false);
  for (int64_t r = 0; r < rows; ++r) {
    const uint8_t *row = in + r * rowBytes;
    forEachPiece(rows, k, interleaved, group, r,
                 [&](size_t from, size_t to, size_t n) {
                   std::memcpy(out + to, row + from, n);
                 });
  }
}

void deinterleaveRow(const uint8_t *w, int64_t rows, int64_t k,
                     int32_t interleaved, int64_t group, int64_t r,
                     uint8_t *out) {
  forEachPiece(rows, k, interleaved, group, r,
               [&](size_t to, size_t from, size_t n) {
                 std::memcpy(out + to, w + from, n);
               });
}

} // namespace llmc::kernels

namespace llmc::kernels {

void interleaveF16Rows(const uint16_t *in, int64_t rows, int64_t k,
                       uint16_t *out) {
  const int64_t full = rows / kF16GroupRows * kF16GroupRows;
  for (int64_t r = 0; r < full; ++r) {
    uint16_t *group = out + (r - r % kF16GroupRows) * k;
    for (int64_t c = 0; c < k; ++c) {
      group[c * kF16GroupRows + r % kF16GroupRows] = in[r * k + c];
    }
  }
  std::memcpy(out + full * k, in + full * k,
              static_cast<size_t>((rows - full) * k) * 2);
}

void f16x16Row(const uint16_t *w, int64_t rows, int64_t k, int64_t r,
               uint16_t *out) {
  const int64_t full = rows / kF16GroupRows * kF16GroupRows;
  if (r >= full) {
    std::memcpy(out, w + r * k, static_cast<size_t>(k) * 2);
    return;
  }
  const uint16_t *group = w + (r - r % kF16GroupRows) * k;
  for (int64_t c = 0; c < k; ++c) {
    out[c] = group[c * kF16GroupRows + r % kF16GroupRows];
  }
}

} // namespace llmc::kernels
