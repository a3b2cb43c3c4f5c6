// Portable versions of the dot-product inner loops, the format conversions and the dispatch.
#include "runtime/kernels/kernels.h"

#include "llmc/program.h"

#include <cstdlib>
#include <cstring>
#include <string>

#if defined(__x86_64__)
#include <immintrin.h>
#endif

namespace llmc::kernels {

float halfToFloat(uint16_t h) {
  uint32_t sign = static_cast<uint32_t>(h & 0x8000) << 16;
  uint32_t exp = (h >> 10) & 0x1f;
  uint32_t mant = h & 0x3ff;
  uint32_t bits;
  if (exp == 0) {
    if (mant == 0) {
      bits = sign;
    } else { // subnormal: renormalize
      exp = 127 - 15 + 1;
      while ((mant & 0x400) == 0) {
        mant <<= 1;
        --exp;
      }
      mant &= 0x3ff;
      bits = sign | (exp << 23) | (mant << 13);
    }
  } else if (exp == 31) {
    bits = sign | 0x7f800000 | (mant << 13);
  } else {
    bits = sign | ((exp + 127 - 15) << 23) | (mant << 13);
  }
  float f;
  std::memcpy(&f, &bits, 4);
  return f;
}

uint16_t floatToHalf(float f) {
  uint32_t x;
  std::memcpy(&x, &f, 4);
  uint32_t sign = (x >> 16) & 0x8000;
  int32_t exp = static_cast<int32_t>((x >> 23) & 0xff) - 127 + 15;
  uint32_t mant = x & 0x7fffff;
  if (((x >> 23) & 0xff) == 0xff) {
    return static_cast<uint16_t>(sign | 0x7c00 | (mant ? 0x200 : 0));
  }
  if (exp >= 31) {
    return static_cast<uint16_t>(sign | 0x7c00);
  }
  if (exp <= 0) {
    if (exp < -10) {
      return static_cast<uint16_t>(sign);
    }
    mant |= 0x800000;
    uint32_t shift = static_cast<uint32_t>(14 - exp);
    uint32_t half = mant >> shift;
    uint32_t rem = mant & ((1u << shift) - 1);
    uint32_t mid = 1u << (shift - 1);
    if (rem > mid || (rem == mid && (half & 1))) {
      ++half;
    }
    return static_cast<uint16_t>(sign | half);
  }
  uint32_t half = sign | (static_cast<uint32_t>(exp) << 10) | (mant >> 13);
  uint32_t rem = mant & 0x1fff;
  if (rem > 0x1000 || (rem == 0x1000 && (half & 1))) {
    ++half;
  }
  return static_cast<uint16_t>(half);
}

uint16_t floatToBF16(float f) {
  uint32_t x;
  std::memcpy(&x, &f, 4);
  if ((x & 0x7fffffff) > 0x7f800000) {
    return static_cast<uint16_t>((x >> 16) | 0x40); // quiet NaN
  }
  x += 0x7fff + ((x >> 16) & 1);
  return static_cast<uint16_t>(x >> 16);
}

namespace {

#if defined(__x86_64__)
/// halfToFloat eight at a time with F16C (exact: every half is a float; a
/// signalling NaN comes out quiet). The compiler converts every f16 weight
/// through here.
__attribute__((target("avx,f16c"))) void halvesToFloatF16C(const uint16_t *s,
                                                             int64_t n,
                                                             float *d) {
  int64_t i = 0;
  for (; i + 8 <= n; i += 8) {
    __m128i h = _mm_loadu_si128(reinterpret_cast<const __m128i *>(s + i));
    _mm256_storeu_ps(d + i, _mm256_cvtph_ps(h));
  }
  for (; i < n; ++i) {
    d[i] = halfToFloat(s[i]);
  }
}

bool haveF16C() {
  static const bool yes = __builtin_cpu_supports("avx") && cpuHasF16C();
  return yes;
}
#endif

} // namespace

void toFloat(const void *src, int32_t format, int64_t n, float *dst) {
  switch (format) {
  case LLMC_FORMAT_F16: {
    const uint16_t *s = static_cast<const uint16_t *>(src);
#if defined(__x86_64__)
    if (haveF16C()) {
      halvesToFloatF16C(s, n, dst);
      return;
    }
#endif
    for (int64_t i = 0; i < n; ++i) {
      dst[i] = halfToFloat(s[i]);
    }
    return;
  }
  case LLMC_FORMAT_BF16: {
    const uint16_t *s = static_cast<const uint16_t *>(src);
    for (int64_t i = 0; i < n; ++i) {
      dst[i] = bf16ToFloat(s[i]);
    }
    return;
  }
  default:
    std::memcpy(dst, src, static_cast<size_t>(n) * 4);
    return;
  }
}

namespace {

template <typename W, typename Load>
void dotTile(const W *w, int64_t ldw, int r, const float *x, int64_t ldx,
             int m, int64_t k, float *out, Load load) {
  for (int i = 0; i < r; ++i) {
    for (int t = 0; t < m; ++t) {
      const W *wr = w + i * ldw;
      const float *xr = x + t * ldx;
      float acc = 0.0f;
      for (int64_t c = 0; c < k; ++c) {
        acc += load(wr[c]) * xr[c];
      }
      out[i * 4 + t] = acc;
    }
  }
}

void dotF32Generic(const float *w, int64_t ldw, int r, const float *x,
                   int64_t ldx, int m, int64_t k, float *out) {
  dotTile(w, ldw, r, x, ldx, m, k, out, [](float v) { return v; });
}

void dotF16Generic(const uint16_t *w, int64_t ldw, int r, const float *x,
                   int64_t ldx, int m, int64_t k, float *out) {
  dotTile(w, ldw, r, x, ldx, m, k, out, halfToFloat);
}

void dotBF16Generic(const uint16_t *w, int64_t ldw, int r, const float *x,
                    int64_t ldx, int m, int64_t k, float *out) {
  dotTile(w, ldw, r, x, ldx, m, k, out, bf16ToFloat);
}

void axpyGeneric(float a, const float *x, float *y, int64_t k) {
  for (int64_t i = 0; i < k; ++i) {
    y[i] += a * x[i];
  }
}

void axpyF16Generic(float a, const uint16_t *x, float *y, int64_t k) {
  for (int64_t i = 0; i < k; ++i) {
    y[i] += a * halfToFloat(x[i]);
  }
}

float dotGeneric(const float *x, const float *y, int64_t k) {
  float acc = 0.0f;
  for (int64_t i = 0; i < k; ++i) {
    acc += x[i] * y[i];
  }
  return acc;
}

void dotQ8Row(const uint8_t *w, const ActBlock *a, int64_t nb, int m,
              int64_t group, float *out) {
  const int64_t sub = group / kQuantSubBlock;
  const size_t blockBytes = 2 + static_cast<size_t>(group);
  for (int t = 0; t < m; ++t) {
    const ActBlock *at = a + t * nb;
    float acc = 0.0f;
    for (int64_t b = 0; b < nb; ++b) {
      const uint8_t *blk = w + (b / sub) * blockBytes;
      uint16_t dh;
      std::memcpy(&dh, blk, 2);
      const int8_t *q = reinterpret_cast<const int8_t *>(blk + 2) +
                        (b % sub) * kQuantSubBlock;
      int s = 0;
      for (int i = 0; i < kQuantSubBlock; ++i) {
        s += q[i] * at[b].q[i];
      }
      acc += halfToFloat(dh) * at[b].d * static_cast<float>(s);
    }
    out[t] = acc;
  }
}

template <bool Asym>
void dotQ4GenericImpl(const uint8_t *w, const ActBlock *a, int64_t nb, int m,
                      int64_t group, float *out) {
  const int64_t sub = group / kQuantSubBlock;
  const size_t head = Asym ? 4 : 2;
  const size_t blockBytes = head + static_cast<size_t>(group) / 2;
  for (int t = 0; t < m; ++t) {
    const ActBlock *at = a + t * nb;
    float acc = 0.0f;
    for (int64_t b = 0; b < nb; ++b) {
      const uint8_t *blk = w + (b / sub) * blockBytes;
      uint16_t dh;
      std::memcpy(&dh, blk, 2);
      const uint8_t *qs = blk + head + (b % sub) * 16;
      int s = 0;
      for (int i = 0; i < 16; ++i) {
        s += (qs[i] & 0x0F) * at[b].q[i] + (qs[i] >> 4) * at[b].q[i + 16];
      }
      float d = halfToFloat(dh);
      if (Asym) {
        uint16_t mh;
        std::memcpy(&mh, blk + 2, 2);
        acc += d * at[b].d * static_cast<float>(s) + halfToFloat(mh) * at[b].sum;
      } else {
        acc += d * (at[b].d * static_cast<float>(s) - 8.0f * at[b].sum);
      }
    }
    out[t] = acc;
  }
}

/// Row i of a tile, through a one-row kernel writing out[i * 4 + t].
template <typename RowFn>
void tileRows(RowFn row, const uint8_t *w, size_t ldw, int r,
              const ActBlock *a, int64_t nb, int m, int64_t group,
              float *out) {
  for (int i = 0; i < r; ++i) {
    row(w + i * ldw, a, nb, m, group, out + i * 4);
  }
}

/// An interleaved group of 8 rows (q8x8, Q8 true, or q4x8) against m
/// activation rows: out[i * kX8Tokens + t].
template <bool Q8>
void dotX8GenericImpl(const uint8_t *w, const ActBlock *a, int64_t nb, int m,
                      int64_t group, float *out) {
  const int64_t sub = group / kQuantSubBlock;
  const size_t piece = Q8 ? kQuantSubBlock : kQuantSubBlock / 2;
  const size_t chunkBytes = kInterleaveRows * (2 + sub * piece);
  for (int i = 0; i < kInterleaveRows; ++i) {
    for (int t = 0; t < m; ++t) {
      const ActBlock *at = a + t * nb;
      float acc = 0.0f;
      for (int64_t b = 0; b < nb; ++b) {
        const uint8_t *chunk = w + (b / sub) * chunkBytes;
        uint16_t dh;
        std::memcpy(&dh, chunk + 2 * i, 2);
        const uint8_t *sb = chunk + 2 * kInterleaveRows + (b % sub) * kInterleaveRows * piece;
        // Byte p of row i's sub-block: piece p / 8, row i, byte p % 8.
        auto q = [&](int p) {
          return sb[((p / kInterleavePiece) * kInterleaveRows + i) * kInterleavePiece +
                    p % kInterleavePiece];
        };
        int s = 0;
        if (Q8) {
          for (int j = 0; j < kQuantSubBlock; ++j) {
            s += static_cast<int8_t>(q(j)) * at[b].q[j];
          }
          acc += halfToFloat(dh) * at[b].d * static_cast<float>(s);
        } else {
          for (int j = 0; j < 16; ++j) {
            s += (q(j) & 0x0F) * at[b].q[j] + (q(j) >> 4) * at[b].q[j + 16];
          }
          acc += halfToFloat(dh) * (at[b].d * static_cast<float>(s) - 8.0f * at[b].sum);
        }
      }
      out[i * kX8Tokens + t] = acc;
    }
  }
}

void dotQ8X8Generic(const uint8_t *w, const ActBlock *a, int64_t nb, int m,
                    int64_t group, float *out) {
  dotX8GenericImpl<true>(w, a, nb, m, group, out);
}

void dotQ4X8Generic(const uint8_t *w, const ActBlock *a, int64_t nb, int m,
                    int64_t group, float *out) {
  dotX8GenericImpl<false>(w, a, nb, m, group, out);
}

void dotF16X16Generic(const uint16_t *w, int64_t k, const float *x,
                      int64_t ldx, int m, float *out) {
  for (int t = 0; t < m; ++t) {
    for (int i = 0; i < kF16GroupRows; ++i) {
      float acc = 0.0f;
      for (int64_t c = 0; c < k; ++c) {
        acc += halfToFloat(w[c * kF16GroupRows + i]) * x[t * ldx + c];
      }
      out[t * kF16GroupRows + i] = acc;
    }
  }
}

void dotQ8Generic(const uint8_t *w, size_t ldw, int r, const ActBlock *a,
                  int64_t nb, int m, int64_t group, float *out) {
  tileRows(dotQ8Row, w, ldw, r, a, nb, m, group, out);
}

void dotQ4Generic(const uint8_t *w, size_t ldw, int r, const ActBlock *a,
                  int64_t nb, int m, int64_t group, float *out) {
  tileRows(dotQ4GenericImpl<false>, w, ldw, r, a, nb, m, group, out);
}

void dotQ4AsymGeneric(const uint8_t *w, size_t ldw, int r, const ActBlock *a,
                      int64_t nb, int m, int64_t group, float *out) {
  tileRows(dotQ4GenericImpl<true>, w, ldw, r, a, nb, m, group, out);
}

} // namespace

void dotSparseGeneric(const uint8_t *w, size_t ldw, int32_t format, int r,
                      const float *x, int64_t ldx, int m, int64_t k,
                      float *out) {
  const int64_t blocks = (k + kS24Columns - 1) / kS24Columns;
  const size_t bytes = sparseBlockBytes(format);
  for (int i = 0; i < r; ++i) {
    for (int t = 0; t < m; ++t) {
      const float *xr = x + t * ldx;
      float acc = 0.0f;
      for (int64_t b = 0; b < blocks; ++b) {
        const uint8_t *blk = w + i * ldw + b * bytes;
        for (int lane = 0; lane < 16; ++lane) {
          int64_t c = b * kS24Columns + sparseColumn(blk, format, lane);
          if (c < k) {
            acc += sparseValue(blk, format, lane) * xr[c];
          }
        }
      }
      out[i * 4 + t] = acc;
    }
  }
}

/// The portable *Streams entries: the groups one after another.
template <void (*F)(const uint8_t *, const ActBlock *, int64_t, int, int64_t,
                    float *)>
void x8StreamsOneByOne(const uint8_t *const *w, int s, const ActBlock *a,
                       int64_t nb, int64_t group, float *out) {
  float tile[kInterleaveRows * kX8Tokens];
  for (int g = 0; g < s; ++g) {
    F(w[g], a, nb, 1, group, tile);
    for (int i = 0; i < kInterleaveRows; ++i) {
      out[g * kInterleaveRows + i] = tile[i * kX8Tokens];
    }
  }
}
template <void (*F)(const uint16_t *, int64_t, const float *, int64_t, int,
                    float *)>
void f16x16StreamsOneByOne(const uint16_t *const *w, int s, int64_t k,
                           const float *x, float *out) {
  for (int g = 0; g < s; ++g) {
    F(w[g], k, x, k, 1, out + g * kF16GroupRows);
  }
}

const KernelTable &genericKernels() {
  static const KernelTable table = {
      "generic",    dotF32Generic, dotF16Generic, dotBF16Generic,
      axpyGeneric,  dotGeneric,    dotQ8Generic,  dotQ4Generic,
      dotQ4AsymGeneric, axpyF16Generic, dotSparseGeneric,
      dotQ8X8Generic, dotQ4X8Generic, dotF16X16Generic,
      x8StreamsOneByOne<dotQ8X8Generic>, x8StreamsOneByOne<dotQ4X8Generic>,
      f16x16StreamsOneByOne<dotF16X16Generic>};
  return table;
}

const KernelTable &bestKernels() {
  static const KernelTable *best = [] {
    const char *force = std::getenv("LLMC_KERNELS");
    std::string want = force ? force : "";
    if (want == "generic") {
      return &genericKernels();
    }
    const KernelTable *avx512 = want == "avx2" ? nullptr : avx512Kernels();
    const KernelTable *avx2 = avx2Kernels();
    return avx512 ? avx512 : avx2 ? avx2 : &genericKernels();
  }();
  return *best;
}

} // namespace llmc::kernels
