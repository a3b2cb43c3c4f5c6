// AVX2 + FMA + F16C versions of the dot-product inner loops (compiled with -mavx2 -mfma -mf16c).
#include "runtime/kernels/kernels.h"

#if defined(__x86_64__) && defined(LLMC_HAVE_AVX2_FILE)
#include <immintrin.h>

#include <cstring>

namespace llmc::kernels {

namespace {

inline float hsum(__m256 v) {
  __m128 lo = _mm256_castps256_ps128(v);
  __m128 hi = _mm256_extractf128_ps(v, 1);
  lo = _mm_add_ps(lo, hi);
  lo = _mm_add_ps(lo, _mm_movehl_ps(lo, lo));
  lo = _mm_add_ss(lo, _mm_movehdup_ps(lo));
  return _mm_cvtss_f32(lo);
}

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
      float s = hsum(acc[i][t]);
      for (int64_t j = c; j < k; ++j) {
        s += scalar(w[i * ldw + j]) * x[t * ldx + j];
      }
      out[i * 4 + t] = s;
    }
  }
}

template <int R, typename W, typename Load, typename Scalar>
void dispatchTokens(const W *w, int64_t ldw, const float *x, int64_t ldx,
                    int m, int64_t k, float *out, Load load, Scalar scalar) {
  switch (m) {
  case 1:
    return dotTileAvx2<R, 1>(w, ldw, x, ldx, k, out, load, scalar);
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
  float s = hsum(acc);
  for (; i < k; ++i) {
    s += x[i] * y[i];
  }
  return s;
}

inline __m256 sumPairsToFloat(__m256i p16) {
  return _mm256_cvtepi32_ps(_mm256_madd_epi16(p16, _mm256_set1_epi16(1)));
}

/// An R x M tile of quantized weight rows against int8 activation rows:
/// every 32-element weight sub-block is loaded (and for q4 unpacked) once
/// per tile and every activation block once per tile.
template <int R, int M>
void dotQ8Tile(const uint8_t *w, size_t ldw, const ActBlock *a, int64_t nb,
               int64_t group, float *out) {
  const int64_t sub = group / kQuantSubBlock;
  const size_t blockBytes = 2 + static_cast<size_t>(group);
  __m256 acc[R][M];
  for (int i = 0; i < R; ++i) {
    for (int t = 0; t < M; ++t) {
      acc[i][t] = _mm256_setzero_ps();
    }
  }
  for (int64_t b = 0; b < nb; ++b) {
    __m256i aw[R], wq[R];
    float d[R];
    for (int i = 0; i < R; ++i) {
      const uint8_t *blk = w + i * ldw + (b / sub) * blockBytes;
      uint16_t dh;
      std::memcpy(&dh, blk, 2);
      d[i] = _cvtsh_ss(dh);
      wq[i] = _mm256_loadu_si256(reinterpret_cast<const __m256i *>(
          blk + 2 + (b % sub) * kQuantSubBlock));
      // maddubs wants unsigned x signed: |w| times x with w's sign.
      aw[i] = _mm256_sign_epi8(wq[i], wq[i]);
    }
    for (int t = 0; t < M; ++t) {
      const ActBlock &x = a[t * nb + b];
      __m256i xq = _mm256_loadu_si256(reinterpret_cast<const __m256i *>(x.q));
      for (int i = 0; i < R; ++i) {
        __m256i p16 = _mm256_maddubs_epi16(aw[i], _mm256_sign_epi8(xq, wq[i]));
        acc[i][t] = _mm256_fmadd_ps(_mm256_set1_ps(d[i] * x.d),
                                    sumPairsToFloat(p16), acc[i][t]);
      }
    }
  }
  for (int i = 0; i < R; ++i) {
    for (int t = 0; t < M; ++t) {
      out[i * 4 + t] = hsum(acc[i][t]);
    }
  }
}

template <bool Asym, int R, int M>
void dotQ4Tile(const uint8_t *w, size_t ldw, const ActBlock *a, int64_t nb,
               int64_t group, float *out) {
  const int64_t sub = group / kQuantSubBlock;
  const size_t head = Asym ? 4 : 2;
  const size_t blockBytes = head + static_cast<size_t>(group) / 2;
  const __m128i low = _mm_set1_epi8(0x0F);
  __m256 acc[R][M];
  float offset[R][M];
  for (int i = 0; i < R; ++i) {
    for (int t = 0; t < M; ++t) {
      acc[i][t] = _mm256_setzero_ps();
      offset[i][t] = 0.0f;
    }
  }
  for (int64_t b = 0; b < nb; ++b) {
    __m256i nib[R];
    float d[R], mn[R];
    for (int i = 0; i < R; ++i) {
      const uint8_t *blk = w + i * ldw + (b / sub) * blockBytes;
      uint16_t dh;
      std::memcpy(&dh, blk, 2);
      d[i] = _cvtsh_ss(dh);
      mn[i] = 0.0f;
      if (Asym) {
        uint16_t mh;
        std::memcpy(&mh, blk + 2, 2);
        mn[i] = _cvtsh_ss(mh);
      }
      __m128i raw = _mm_loadu_si128(
          reinterpret_cast<const __m128i *>(blk + head + (b % sub) * 16));
      nib[i] = _mm256_set_m128i(_mm_and_si128(_mm_srli_epi16(raw, 4), low),
                                _mm_and_si128(raw, low));
    }
    for (int t = 0; t < M; ++t) {
      const ActBlock &x = a[t * nb + b];
      __m256i xq = _mm256_loadu_si256(reinterpret_cast<const __m256i *>(x.q));
      for (int i = 0; i < R; ++i) {
        acc[i][t] = _mm256_fmadd_ps(
            _mm256_set1_ps(d[i] * x.d),
            sumPairsToFloat(_mm256_maddubs_epi16(nib[i], xq)), acc[i][t]);
        offset[i][t] += Asym ? mn[i] * x.sum : -8.0f * d[i] * x.sum;
      }
    }
  }
  for (int i = 0; i < R; ++i) {
    for (int t = 0; t < M; ++t) {
      out[i * 4 + t] = hsum(acc[i][t]) + offset[i][t];
    }
  }
}

/// Instantiates `Tile<R, M>` for r in 1..2 and m in 1..4.
template <template <int, int> class Tile>
void dispatchQuant(const uint8_t *w, size_t ldw, int r, const ActBlock *a,
                   int64_t nb, int m, int64_t group, float *out) {
  m = m < 1 ? 1 : (m > 4 ? 4 : m);
  if (r >= 2) {
    switch (m) {
    case 1: return Tile<2, 1>::run(w, ldw, a, nb, group, out);
    case 2: return Tile<2, 2>::run(w, ldw, a, nb, group, out);
    case 3: return Tile<2, 3>::run(w, ldw, a, nb, group, out);
    default: return Tile<2, 4>::run(w, ldw, a, nb, group, out);
    }
  }
  switch (m) {
  case 1: return Tile<1, 1>::run(w, ldw, a, nb, group, out);
  case 2: return Tile<1, 2>::run(w, ldw, a, nb, group, out);
  case 3: return Tile<1, 3>::run(w, ldw, a, nb, group, out);
  default: return Tile<1, 4>::run(w, ldw, a, nb, group, out);
  }
}

template <int R, int M> struct Q8Tile {
  static void run(const uint8_t *w, size_t ldw, const ActBlock *a, int64_t nb,
                  int64_t group, float *out) {
    dotQ8Tile<R, M>(w, ldw, a, nb, group, out);
  }
};
template <int R, int M> struct Q4Tile {
  static void run(const uint8_t *w, size_t ldw, const ActBlock *a, int64_t nb,
                  int64_t group, float *out) {
    dotQ4Tile<false, R, M>(w, ldw, a, nb, group, out);
  }
};
template <int R, int M> struct Q4AsymTile {
  static void run(const uint8_t *w, size_t ldw, const ActBlock *a, int64_t nb,
                  int64_t group, float *out) {
    dotQ4Tile<true, R, M>(w, ldw, a, nb, group, out);
  }
};

void dotQ8Avx2(const uint8_t *w, size_t ldw, int r, const ActBlock *a,
               int64_t nb, int m, int64_t group, float *out) {
  dispatchQuant<Q8Tile>(w, ldw, r, a, nb, m, group, out);
}

void dotQ4Avx2(const uint8_t *w, size_t ldw, int r, const ActBlock *a,
               int64_t nb, int m, int64_t group, float *out) {
  dispatchQuant<Q4Tile>(w, ldw, r, a, nb, m, group, out);
}

void dotQ4AsymAvx2(const uint8_t *w, size_t ldw, int r, const ActBlock *a,
                   int64_t nb, int m, int64_t group, float *out) {
  dispatchQuant<Q4AsymTile>(w, ldw, r, a, nb, m, group, out);
}

} // namespace

const KernelTable *avx2Kernels() {
  static const KernelTable table = {
      "avx2",   dotF32Avx2, dotF16Avx2, dotBF16Avx2,  axpyAvx2,
      dotAvx2,  dotQ8Avx2,  dotQ4Avx2,  dotQ4AsymAvx2, axpyF16Avx2};
  static const bool supported = __builtin_cpu_supports("avx2") &&
                                __builtin_cpu_supports("fma") &&
                                __builtin_cpu_supports("f16c");
  return supported ? &table : nullptr;
}

} // namespace llmc::kernels

#else

namespace llmc::kernels {
const KernelTable *avx2Kernels() { return nullptr; }
} // namespace llmc::kernels

#endif
