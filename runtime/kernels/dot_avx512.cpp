// AVX-512 versions of the dot-product inner loops (F/BW/VL with VNNI; compiled with -mavx512f
// -mavx512bw -mavx512vl -mavx512vnni -mfma -mf16c): 16-wide float tiles with masked tails, and
// the int8 dot products as VNNI dpbusd (one instruction where AVX2 needs maddubs and madd).
#include "runtime/kernels/kernels.h"

#if defined(__x86_64__) && defined(LLMC_HAVE_AVX512_FILE)
// GCC 12's AVX-512 headers build some intrinsics from _mm512_undefined_*,
// which -Wuninitialized reports inside the header (a known false positive).
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wuninitialized"
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#include <immintrin.h>
#pragma GCC diagnostic pop

#include <cstring>

namespace llmc::kernels {

namespace {

inline __m512 loadF32(const float *w, __mmask16 m) {
  return _mm512_maskz_loadu_ps(m, w);
}
inline __m512 loadF16(const uint16_t *w, __mmask16 m) {
  return _mm512_cvtph_ps(_mm256_maskz_loadu_epi16(m, w));
}
inline __m512 loadBF16(const uint16_t *w, __mmask16 m) {
  __m512i v = _mm512_cvtepu16_epi32(_mm256_maskz_loadu_epi16(m, w));
  return _mm512_castsi512_ps(_mm512_slli_epi32(v, 16));
}

/// An R x M tile of float weight rows against activation rows, 16 columns
/// a step; the last partial step loads under a mask (zeros elsewhere).
template <int R, int M, typename W, typename Load>
void dotTile(const W *w, int64_t ldw, const float *x, int64_t ldx, int64_t k,
             float *out, Load load) {
  __m512 acc[R][M];
  for (int i = 0; i < R; ++i) {
    for (int t = 0; t < M; ++t) {
      acc[i][t] = _mm512_setzero_ps();
    }
  }
  for (int64_t c = 0; c < k; c += 16) {
    const __mmask16 m =
        k - c >= 16 ? __mmask16(0xFFFF) : __mmask16((1u << (k - c)) - 1);
    __m512 wv[R];
    for (int i = 0; i < R; ++i) {
      wv[i] = load(w + i * ldw + c, m);
    }
    for (int t = 0; t < M; ++t) {
      __m512 xv = _mm512_maskz_loadu_ps(m, x + t * ldx + c);
      for (int i = 0; i < R; ++i) {
        acc[i][t] = _mm512_fmadd_ps(wv[i], xv, acc[i][t]);
      }
    }
  }
  for (int i = 0; i < R; ++i) {
    for (int t = 0; t < M; ++t) {
      out[i * 4 + t] = _mm512_reduce_add_ps(acc[i][t]);
    }
  }
}

template <int R, typename W, typename Load>
void dispatchTokens(const W *w, int64_t ldw, const float *x, int64_t ldx,
                    int m, int64_t k, float *out, Load load) {
  switch (m) {
  case 1: return dotTile<R, 1>(w, ldw, x, ldx, k, out, load);
  case 2: return dotTile<R, 2>(w, ldw, x, ldx, k, out, load);
  case 3: return dotTile<R, 3>(w, ldw, x, ldx, k, out, load);
  default: return dotTile<R, 4>(w, ldw, x, ldx, k, out, load);
  }
}

template <typename W, typename Load>
void dispatchTile(const W *w, int64_t ldw, int r, const float *x, int64_t ldx,
                  int m, int64_t k, float *out, Load load) {
  if (r >= 2) {
    dispatchTokens<2>(w, ldw, x, ldx, m, k, out, load);
  } else {
    dispatchTokens<1>(w, ldw, x, ldx, m, k, out, load);
  }
}

// Several activation rows (prefill) run the AVX2 tiles: on the Xeon measured
// (docs/PERFORMANCE.md) 512-bit FMA tiles ran prefill at half the AVX2 speed,
// while one row (decode, bound by memory) gained from the wider loads.
void dotF32(const float *w, int64_t ldw, int r, const float *x, int64_t ldx,
            int m, int64_t k, float *out) {
  if (m > 1) {
    return avx2Kernels()->dotF32(w, ldw, r, x, ldx, m, k, out);
  }
  dispatchTile(w, ldw, r, x, ldx, m, k, out, loadF32);
}

void dotF16(const uint16_t *w, int64_t ldw, int r, const float *x,
            int64_t ldx, int m, int64_t k, float *out) {
  if (m > 1) {
    return avx2Kernels()->dotF16(w, ldw, r, x, ldx, m, k, out);
  }
  dispatchTile(w, ldw, r, x, ldx, m, k, out, loadF16);
}

void dotBF16(const uint16_t *w, int64_t ldw, int r, const float *x,
             int64_t ldx, int m, int64_t k, float *out) {
  if (m > 1) {
    return avx2Kernels()->dotBF16(w, ldw, r, x, ldx, m, k, out);
  }
  dispatchTile(w, ldw, r, x, ldx, m, k, out, loadBF16);
}

void axpy(float a, const float *x, float *y, int64_t k) {
  const __m512 av = _mm512_set1_ps(a);
  for (int64_t i = 0; i < k; i += 16) {
    const __mmask16 m =
        k - i >= 16 ? __mmask16(0xFFFF) : __mmask16((1u << (k - i)) - 1);
    __m512 r = _mm512_fmadd_ps(av, _mm512_maskz_loadu_ps(m, x + i),
                               _mm512_maskz_loadu_ps(m, y + i));
    _mm512_mask_storeu_ps(y + i, m, r);
  }
}

void axpyF16(float a, const uint16_t *x, float *y, int64_t k) {
  const __m512 av = _mm512_set1_ps(a);
  for (int64_t i = 0; i < k; i += 16) {
    const __mmask16 m =
        k - i >= 16 ? __mmask16(0xFFFF) : __mmask16((1u << (k - i)) - 1);
    __m512 r = _mm512_fmadd_ps(av, loadF16(x + i, m),
                               _mm512_maskz_loadu_ps(m, y + i));
    _mm512_mask_storeu_ps(y + i, m, r);
  }
}

float dot(const float *x, const float *y, int64_t k) {
  __m512 acc = _mm512_setzero_ps();
  for (int64_t i = 0; i < k; i += 16) {
    const __mmask16 m =
        k - i >= 16 ? __mmask16(0xFFFF) : __mmask16((1u << (k - i)) - 1);
    acc = _mm512_fmadd_ps(_mm512_maskz_loadu_ps(m, x + i),
                          _mm512_maskz_loadu_ps(m, y + i), acc);
  }
  return _mm512_reduce_add_ps(acc);
}

inline float hsum256(__m256 v) {
  __m128 lo = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
  lo = _mm_add_ps(lo, _mm_movehl_ps(lo, lo));
  lo = _mm_add_ss(lo, _mm_movehdup_ps(lo));
  return _mm_cvtss_f32(lo);
}

/// q8 rows against int8 activations: per 32-element sub-block one VNNI
/// dpbusd of |w| (unsigned) with x carrying w's sign.
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
      aw[i] = _mm256_abs_epi8(wq[i]);
    }
    for (int t = 0; t < M; ++t) {
      const ActBlock &x = a[t * nb + b];
      __m256i xq = _mm256_loadu_si256(reinterpret_cast<const __m256i *>(x.q));
      for (int i = 0; i < R; ++i) {
        __m256i s = _mm256_dpbusd_epi32(_mm256_setzero_si256(), aw[i],
                                        _mm256_sign_epi8(xq, wq[i]));
        acc[i][t] = _mm256_fmadd_ps(_mm256_set1_ps(d[i] * x.d),
                                    _mm256_cvtepi32_ps(s), acc[i][t]);
      }
    }
  }
  for (int i = 0; i < R; ++i) {
    for (int t = 0; t < M; ++t) {
      out[i * 4 + t] = hsum256(acc[i][t]);
    }
  }
}

/// q4 rows: the unpacked nibbles (0..15) are dpbusd's unsigned operand; the
/// -8 (or the zero point) is applied once per block through x's sum.
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
        __m256i s = _mm256_dpbusd_epi32(_mm256_setzero_si256(), nib[i], xq);
        acc[i][t] = _mm256_fmadd_ps(_mm256_set1_ps(d[i] * x.d),
                                    _mm256_cvtepi32_ps(s), acc[i][t]);
        offset[i][t] += Asym ? mn[i] * x.sum : -8.0f * d[i] * x.sum;
      }
    }
  }
  for (int i = 0; i < R; ++i) {
    for (int t = 0; t < M; ++t) {
      out[i * 4 + t] = hsum256(acc[i][t]) + offset[i][t];
    }
  }
}

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

void dotQ8(const uint8_t *w, size_t ldw, int r, const ActBlock *a, int64_t nb,
           int m, int64_t group, float *out) {
  dispatchQuant<Q8Tile>(w, ldw, r, a, nb, m, group, out);
}
void dotQ4(const uint8_t *w, size_t ldw, int r, const ActBlock *a, int64_t nb,
           int m, int64_t group, float *out) {
  dispatchQuant<Q4Tile>(w, ldw, r, a, nb, m, group, out);
}
void dotQ4Asym(const uint8_t *w, size_t ldw, int r, const ActBlock *a,
               int64_t nb, int m, int64_t group, float *out) {
  dispatchQuant<Q4AsymTile>(w, ldw, r, a, nb, m, group, out);
}

} // namespace

const KernelTable *avx512Kernels() {
  static const KernelTable table = {"avx512", dotF32, dotF16,    dotBF16,
                                    axpy,     dot,    dotQ8,     dotQ4,
                                    dotQ4Asym, axpyF16};
  // The AVX2 table serves the multi-row float tiles (every AVX-512 CPU has
  // AVX2).
  static const bool supported =
      avx2Kernels() != nullptr &&
      __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw") &&
      __builtin_cpu_supports("avx512vl") &&
      __builtin_cpu_supports("avx512vnni") && __builtin_cpu_supports("fma") &&
      __builtin_cpu_supports("f16c");
  return supported ? &table : nullptr;
}

} // namespace llmc::kernels

#else

namespace llmc::kernels {
const KernelTable *avx512Kernels() { return nullptr; }
} // namespace llmc::kernels

#endif
