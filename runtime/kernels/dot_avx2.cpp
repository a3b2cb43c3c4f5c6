// AVX2 + FMA + F16C versions of the dot-product inner loops (compiled with -mavx2 -mfma -mf16c).
#include "runtime/kernels/kernels.h"

#if defined(__x86_64__) && defined(LLMC_HAVE_AVX2_FILE)
#include <immintrin.h>

#include "runtime/kernels/quant_tiles.h"

#include <cstring>

namespace llmc::kernels {

namespace {

inline __m256 loadF32(const float *w) { return _mm256_loadu_ps(w); }
inline __m256 loadF16(const uint16_t *w) {
  return _mm256_cvtph_ps(_mm_loadu_si128(reinterpret_cast<const __m128i *>(w)));
}
inline __m256 loadBF16(const uint16_t *w) {
  __m256i v = _mm256_cvtepu16_epi32(
      _mm_loadu_si128(reinterpret_cast<const __m128i *>(w)));
  return _mm256_castsi256_ps(_mm256_slli_epi32(v, 16));
}

/// An R x M tile: R weight rows against M activation rows, each 8-element
/// slice of every row loaded once and used R x M times (2 x 4: eight
/// accumulators, six loads per eight FMAs).
template <int R, int M, typename W, typename Load, typename Scalar>
void dotTileAvx2(const W *w, int64_t ldw, const float *x, int64_t ldx,
                 int64_t k, float *out, Load load, Scalar scalar) {
  __m256 acc[R][M];
  for (int i = 0; i < R; ++i) {
    for (int t = 0; t < M; ++t) {
      acc[i][t] = _mm256_setzero_ps();
    }
  }
  int64_t c = 0;
  for (; c + 8 <= k; c += 8) {
    __m256 wv[R];
    for (int i = 0; i < R; ++i) {
      wv[i] = load(w + i * ldw + c);
    }
    for (int t = 0; t < M; ++t) {
      __m256 xv = _mm256_loadu_ps(x + t * ldx + c);
      for (int i = 0; i < R; ++i) {
        acc[i][t] = _mm256_fmadd_ps(wv[i], xv, acc[i][t]);
      }
    }
  }
  for (int i = 0; i < R; ++i) {
    for (int t = 0; t < M; ++t) {
      float s = hsum256(acc[i][t]);
      for (int64_t j = c; j < k; ++j) {
        s += scalar(w[i * ldw + j]) * x[t * ldx + j];
      }
      out[i * 4 + t] = s;
    }
  }
}

/// One activation row (decode): four accumulators per weight row, so the
/// FMA latency does not bound the stream of weights.
template <int R, typename W, typename Load, typename Scalar>
void dotRowTileAvx2(const W *w, int64_t ldw, const float *x, int64_t k,
                    float *out, Load load, Scalar scalar) {
  __m256 acc[R][4];
  for (int i = 0; i < R; ++i) {
    for (int u = 0; u < 4; ++u) {
      acc[i][u] = _mm256_setzero_ps();
    }
  }
  int64_t c = 0;
  for (; c + 32 <= k; c += 32) {
    for (int u = 0; u < 4; ++u) {
      const __m256 xv = _mm256_loadu_ps(x + c + 8 * u);
      for (int i = 0; i < R; ++i) {
        acc[i][u] = _mm256_fmadd_ps(load(w + i * ldw + c + 8 * u), xv, acc[i][u]);
      }
    }
  }
  for (; c + 8 <= k; c += 8) {
    const __m256 xv = _mm256_loadu_ps(x + c);
    for (int i = 0; i < R; ++i) {
      acc[i][0] = _mm256_fmadd_ps(load(w + i * ldw + c), xv, acc[i][0]);
    }
  }
  for (int i = 0; i < R; ++i) {
    float s = hsum256(_mm256_add_ps(_mm256_add_ps(acc[i][0], acc[i][1]),
                                    _mm256_add_ps(acc[i][2], acc[i][3])));
    for (int64_t j = c; j < k; ++j) {
      s += scalar(w[i * ldw + j]) * x[j];
    }
    out[i * 4] = s;
  }
}

/// f16x16: column c of the 16 rows is two 8-float registers; every token
/// broadcasts its x[c] into one FMA per register. One token keeps two
/// column phases apart (four accumulators) so the FMA latency does not
/// bound the stream; several tokens run six at a time: 12 accumulators,
/// the two weight registers and a broadcast fill the 16 registers, and each
/// converted column feeds 12 FMAs instead of 4 tokens' 8. Inlined into
/// dotF16X16Avx2: GCC 12 compiled the tiles of 4 or more tokens, as
/// functions of their own, with a stack copy of every accumulator stored
/// every column.
template <int M>
__attribute__((always_inline)) inline void
dotF16X16Tile(const uint16_t *w, int64_t k, const float *x, int64_t ldx, float *out) {
  constexpr int kPhases = M == 1 ? 2 : 1;
  __m256 acc[M][kPhases][2];
  for (int t = 0; t < M; ++t) {
    for (int p = 0; p < kPhases; ++p) {
      acc[t][p][0] = acc[t][p][1] = _mm256_setzero_ps();
    }
  }
  int64_t c = 0;
  for (; c + kPhases <= k; c += kPhases) {
    _mm_prefetch(reinterpret_cast<const char *>(w + c * 16) + 4096, _MM_HINT_T0);
    for (int p = 0; p < kPhases; ++p) {
      const uint16_t *col = w + (c + p) * 16;
      const __m256 w0 = loadF16(col), w1 = loadF16(col + 8);
      for (int t = 0; t < M; ++t) {
        const __m256 xv = _mm256_broadcast_ss(x + t * ldx + c + p);
        acc[t][p][0] = _mm256_fmadd_ps(w0, xv, acc[t][p][0]);
        acc[t][p][1] = _mm256_fmadd_ps(w1, xv, acc[t][p][1]);
      }
    }
  }
  for (; c < k; ++c) {
    const __m256 w0 = loadF16(w + c * 16), w1 = loadF16(w + c * 16 + 8);
    for (int t = 0; t < M; ++t) {
      const __m256 xv = _mm256_broadcast_ss(x + t * ldx + c);
      acc[t][0][0] = _mm256_fmadd_ps(w0, xv, acc[t][0][0]);
      acc[t][0][1] = _mm256_fmadd_ps(w1, xv, acc[t][0][1]);
    }
  }
  for (int t = 0; t < M; ++t) {
    for (int p = 1; p < kPhases; ++p) {
      acc[t][0][0] = _mm256_add_ps(acc[t][0][0], acc[t][p][0]);
      acc[t][0][1] = _mm256_add_ps(acc[t][0][1], acc[t][p][1]);
    }
    _mm256_storeu_ps(out + t * 16, acc[t][0][0]);
    _mm256_storeu_ps(out + t * 16 + 8, acc[t][0][1]);
  }
}

void dotF16X16Avx2(const uint16_t *w, int64_t k, const float *x, int64_t ldx,
                   int m, float *out) {
  forTokenTiles<6>(m, [&](auto n, int t) {
    dotF16X16Tile<decltype(n)::value>(w, k, x + t * ldx, ldx, out + t * 16);
  });
}

/// Decode over f16x16 with 256-bit registers: S groups side by side, one
/// broadcast of x[c] for all of them, each stream prefetched 2 KB ahead.
template <int S>
void dotF16X16StreamsTile(const uint16_t *const *w, int64_t k, const float *x,
                          float *out) {
  __m256 acc[S][2];
  for (int g = 0; g < S; ++g) {
    acc[g][0] = acc[g][1] = _mm256_setzero_ps();
  }
  for (int64_t c = 0; c < k; ++c) {
    const __m256 xv = _mm256_broadcast_ss(x + c);
    for (int g = 0; g < S; ++g) {
      const uint16_t *col = w[g] + c * kF16GroupRows;
      if ((c & 1) == 0) { // one 64-byte line holds two columns
        _mm_prefetch(reinterpret_cast<const char *>(col) + 2048, _MM_HINT_T0);
      }
      acc[g][0] = _mm256_fmadd_ps(loadF16(col), xv, acc[g][0]);
      acc[g][1] = _mm256_fmadd_ps(loadF16(col + 8), xv, acc[g][1]);
    }
  }
  for (int g = 0; g < S; ++g) {
    _mm256_storeu_ps(out + g * kF16GroupRows, acc[g][0]);
    _mm256_storeu_ps(out + g * kF16GroupRows + 8, acc[g][1]);
  }
}

void dotF16X16StreamsAvx2(const uint16_t *const *w, int s, int64_t k, const float *x,
                          float *out) {
  withStreamCount(s, [&](auto n) {
    dotF16X16StreamsTile<decltype(n)::value>(w, k, x, out);
  });
}

template <int R, typename W, typename Load, typename Scalar>
void dispatchTokens(const W *w, int64_t ldw, const float *x, int64_t ldx,
                    int m, int64_t k, float *out, Load load, Scalar scalar) {
  switch (m) {
  case 1:
    return dotRowTileAvx2<R>(w, ldw, x, k, out, load, scalar);
  case 2:
    return dotTileAvx2<R, 2>(w, ldw, x, ldx, k, out, load, scalar);
  case 3:
    return dotTileAvx2<R, 3>(w, ldw, x, ldx, k, out, load, scalar);
  default:
    return dotTileAvx2<R, 4>(w, ldw, x, ldx, k, out, load, scalar);
  }
}

template <typename W, typename Load, typename Scalar>
void dispatchTile(const W *w, int64_t ldw, int r, const float *x, int64_t ldx,
                  int m, int64_t k, float *out, Load load, Scalar scalar) {
  if (r >= 2) {
    dispatchTokens<2>(w, ldw, x, ldx, m, k, out, load, scalar);
  } else {
    dispatchTokens<1>(w, ldw, x, ldx, m, k, out, load, scalar);
  }
}

void dotF32Avx2(const float *w, int64_t ldw, int r, const float *x,
                int64_t ldx, int m, int64_t k, float *out) {
  dispatchTile(w, ldw, r, x, ldx, m, k, out, loadF32,
               [](float v) { return v; });
}

void dotF16Avx2(const uint16_t *w, int64_t ldw, int r, const float *x,
                int64_t ldx, int m, int64_t k, float *out) {
  dispatchTile(w, ldw, r, x, ldx, m, k, out, loadF16,
               [](uint16_t v) { return _cvtsh_ss(v); });
}

void dotBF16Avx2(const uint16_t *w, int64_t ldw, int r, const float *x,
                 int64_t ldx, int m, int64_t k, float *out) {
  dispatchTile(w, ldw, r, x, ldx, m, k, out, loadBF16,
               [](uint16_t v) { return bf16ToFloat(v); });
}

void axpyAvx2(float a, const float *x, float *y, int64_t k) {
  __m256 av = _mm256_set1_ps(a);
  int64_t i = 0;
  for (; i + 8 <= k; i += 8) {
    _mm256_storeu_ps(y + i, _mm256_fmadd_ps(av, _mm256_loadu_ps(x + i),
                                            _mm256_loadu_ps(y + i)));
  }
  for (; i < k; ++i) {
    y[i] += a * x[i];
  }
}

void axpyF16Avx2(float a, const uint16_t *x, float *y, int64_t k) {
  __m256 av = _mm256_set1_ps(a);
  int64_t i = 0;
  for (; i + 8 <= k; i += 8) {
    _mm256_storeu_ps(y + i, _mm256_fmadd_ps(av, loadF16(x + i),
                                            _mm256_loadu_ps(y + i)));
  }
  for (; i < k; ++i) {
    y[i] += a * _cvtsh_ss(x[i]);
  }
}

float dotAvx2(const float *x, const float *y, int64_t k) {
  __m256 acc = _mm256_setzero_ps();
  int64_t i = 0;
  for (; i + 8 <= k; i += 8) {
    acc = _mm256_fmadd_ps(_mm256_loadu_ps(x + i), _mm256_loadu_ps(y + i), acc);
  }
  float s = hsum256(acc);
  for (; i < k; ++i) {
    s += x[i] * y[i];
  }
  return s;
}

/// For an index byte of a 2:4 block (two runs of 4), the lanes of an 8-float
/// load that hold the runs' kept columns: {p0, p1, 4 + q0, 4 + q1}.
struct S24Lanes {
  alignas(16) int32_t lane[256][4];
  S24Lanes() {
    for (int b = 0; b < 256; ++b) {
      lane[b][0] = b & 3;
      lane[b][1] = (b >> 2) & 3;
      lane[b][2] = 4 + ((b >> 4) & 3);
      lane[b][3] = 4 + ((b >> 6) & 3);
    }
  }
};
const S24Lanes kS24Lanes;

/// The 8 activations that the 8 kept values of runs 4h..4h+3 multiply.
inline __m256 s24Select(const float *x, const uint8_t *idx) {
  __m256 a = _mm256_permutevar8x32_ps(
      _mm256_loadu_ps(x),
      _mm256_castsi128_si256(_mm_load_si128(
          reinterpret_cast<const __m128i *>(kS24Lanes.lane[idx[0]]))));
  __m256 b = _mm256_permutevar8x32_ps(
      _mm256_loadu_ps(x + 8),
      _mm256_castsi128_si256(_mm_load_si128(
          reinterpret_cast<const __m128i *>(kS24Lanes.lane[idx[1]]))));
  return _mm256_permute2f128_ps(a, b, 0x20);
}

/// A 2:4 block's 16 values as two vectors of 8.
template <int32_t Format>
inline void sparseValues(const uint8_t *blk, __m256 &lo, __m256 &hi) {
  if constexpr (Format == LLMC_FORMAT_S24) {
    lo = _mm256_cvtph_ps(_mm_loadu_si128(reinterpret_cast<const __m128i *>(blk)));
    hi = _mm256_cvtph_ps(
        _mm_loadu_si128(reinterpret_cast<const __m128i *>(blk + 16)));
  } else {
    const __m256 d = _mm256_set1_ps(sparseScale(blk));
    const __m128i q = sparseCodes<Format>(blk);
    lo = _mm256_mul_ps(_mm256_cvtepi32_ps(_mm256_cvtepi8_epi32(q)), d);
    hi = _mm256_mul_ps(
        _mm256_cvtepi32_ps(_mm256_cvtepi8_epi32(_mm_srli_si128(q, 8))), d);
  }
}

template <int32_t Format> struct SparseAvx2 {
static void run(const uint8_t *w, size_t ldw, int r, const float *x,
                int64_t ldx, int m, int64_t k, float *out) {
  const size_t bytes = sparseBlockBytes(Format);
  const int64_t full = k / kS24Columns;
  for (int i = 0; i < r; ++i) {
    const uint8_t *row = w + i * ldw;
    __m256 acc[4] = {_mm256_setzero_ps(), _mm256_setzero_ps(),
                     _mm256_setzero_ps(), _mm256_setzero_ps()};
    for (int64_t b = 0; b < full; ++b) {
      const uint8_t *blk = row + b * bytes;
      const uint8_t *idx = blk + bytes - 4;
      __m256 v0, v1;
      sparseValues<Format>(blk, v0, v1);
      for (int t = 0; t < m; ++t) {
        const float *xb = x + t * ldx + b * kS24Columns;
        acc[t] = _mm256_fmadd_ps(v0, s24Select(xb, idx), acc[t]);
        acc[t] = _mm256_fmadd_ps(v1, s24Select(xb + 16, idx + 2), acc[t]);
      }
    }
    float tail[8];
    sparseTail(row, Format, x, ldx, m, k, tail);
    for (int t = 0; t < m; ++t) {
      out[i * 4 + t] = hsum256(acc[t]) + tail[t];
    }
  }
}
};

void dotSparseAvx2(const uint8_t *w, size_t ldw, int32_t format, int r,
                   const float *x, int64_t ldx, int m, int64_t k, float *out) {
  dispatchSparse<SparseAvx2>(w, ldw, format, r, x, ldx, m, k, out);
}

/// maddubs (pairs to int16) then madd (pairs to int32): the AVX2 integer dot.
struct Avx2Dot {
  static __m256i sum(__m256i u, __m256i s) {
    return _mm256_madd_epi16(_mm256_maddubs_epi16(u, s), _mm256_set1_epi16(1));
  }
};

} // namespace

const KernelTable *avx2Kernels() {
  static const KernelTable table = {
      "avx2",   dotF32Avx2, dotF16Avx2, dotBF16Avx2,  axpyAvx2,
      dotAvx2,  dotQuant<Avx2Dot, 0>, dotQuant<Avx2Dot, 1>,
      dotQuant<Avx2Dot, 2>, axpyF16Avx2, dotSparseAvx2,
      dotX8Avx2<true>, dotX8Avx2<false>, dotF16X16Avx2,
      dotX8StreamsAvx2Entry<Avx2Dot, true>, dotX8StreamsAvx2Entry<Avx2Dot, false>,
      dotF16X16StreamsAvx2};
  static const bool supported = __builtin_cpu_supports("avx2") &&
                                __builtin_cpu_supports("fma") &&
                                cpuHasF16C();
  return supported ? &table : nullptr;
}

} // namespace llmc::kernels

#else

namespace llmc::kernels {
const KernelTable *avx2Kernels() { return nullptr; }
} // namespace llmc::kernels

#endif
