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

/// One weight row against M activation rows; the weight vector is loaded once
/// per 8 elements and reused M times.
template <int M, typename W, typename Load, typename Scalar>
void dotRowsAvx2(const W *w, const float *x, int64_t ldx, int64_t k,
                 float *out, Load load, Scalar scalar) {
  __m256 acc[M];
  for (int t = 0; t < M; ++t) {
    acc[t] = _mm256_setzero_ps();
  }
  int64_t i = 0;
  for (; i + 8 <= k; i += 8) {
    __m256 wv = load(w + i);
    for (int t = 0; t < M; ++t) {
      acc[t] = _mm256_fmadd_ps(wv, _mm256_loadu_ps(x + t * ldx + i), acc[t]);
    }
  }
  for (int t = 0; t < M; ++t) {
    float s = hsum(acc[t]);
    for (int64_t j = i; j < k; ++j) {
      s += scalar(w[j]) * x[t * ldx + j];
    }
    out[t] = s;
  }
}

template <typename W, typename Load, typename Scalar>
void dispatchRows(const W *w, const float *x, int64_t ldx, int m, int64_t k,
                  float *out, Load load, Scalar scalar) {
  switch (m) {
  case 1:
    return dotRowsAvx2<1>(w, x, ldx, k, out, load, scalar);
  case 2:
    return dotRowsAvx2<2>(w, x, ldx, k, out, load, scalar);
  case 3:
    return dotRowsAvx2<3>(w, x, ldx, k, out, load, scalar);
  default:
    return dotRowsAvx2<4>(w, x, ldx, k, out, load, scalar);
  }
}

void dotF32Avx2(const float *w, const float *x, int64_t ldx, int m, int64_t k,
                float *out) {
  dispatchRows(w, x, ldx, m, k, out, loadF32, [](float v) { return v; });
}

void dotF16Avx2(const uint16_t *w, const float *x, int64_t ldx, int m,
                int64_t k, float *out) {
  dispatchRows(w, x, ldx, m, k, out, loadF16,
               [](uint16_t v) { return _cvtsh_ss(v); });
}

void dotBF16Avx2(const uint16_t *w, const float *x, int64_t ldx, int m,
                 int64_t k, float *out) {
  dispatchRows(w, x, ldx, m, k, out, loadBF16,
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

/// One quantized weight row against M activation rows: each 32-element
/// sub-block of the weights is loaded (and for q4 unpacked) once and used for
/// all M rows.
template <int M>
void dotQ8Rows(const uint8_t *w, const ActBlock *a, int64_t nb, int64_t group,
               float *out) {
  const int64_t sub = group / kQuantSubBlock;
  const size_t blockBytes = 2 + static_cast<size_t>(group);
  __m256 acc[M];
  for (int t = 0; t < M; ++t) {
    acc[t] = _mm256_setzero_ps();
  }
  for (int64_t b = 0; b < nb; ++b) {
    const uint8_t *blk = w + (b / sub) * blockBytes;
    uint16_t dh;
    std::memcpy(&dh, blk, 2);
    const float d = _cvtsh_ss(dh);
    __m256i wq = _mm256_loadu_si256(reinterpret_cast<const __m256i *>(
        blk + 2 + (b % sub) * kQuantSubBlock));
    // maddubs wants unsigned x signed: |w| times x with w's sign.
    __m256i aw = _mm256_sign_epi8(wq, wq);
    for (int t = 0; t < M; ++t) {
      const ActBlock &x = a[t * nb + b];
      __m256i xq = _mm256_loadu_si256(reinterpret_cast<const __m256i *>(x.q));
      __m256i p16 = _mm256_maddubs_epi16(aw, _mm256_sign_epi8(xq, wq));
      acc[t] = _mm256_fmadd_ps(_mm256_set1_ps(d * x.d), sumPairsToFloat(p16),
                               acc[t]);
    }
  }
  for (int t = 0; t < M; ++t) {
    out[t] = hsum(acc[t]);
  }
}

void dotQ8Avx2(const uint8_t *w, const ActBlock *a, int64_t nb, int m,
               int64_t group, float *out) {
  switch (m) {
  case 1:
    return dotQ8Rows<1>(w, a, nb, group, out);
  case 2:
    return dotQ8Rows<2>(w, a, nb, group, out);
  case 3:
    return dotQ8Rows<3>(w, a, nb, group, out);
  default:
    return dotQ8Rows<4>(w, a, nb, group, out);
  }
}

template <bool Asym, int M>
void dotQ4Rows(const uint8_t *w, const ActBlock *a, int64_t nb, int64_t group,
               float *out) {
  const int64_t sub = group / kQuantSubBlock;
  const size_t head = Asym ? 4 : 2;
  const size_t blockBytes = head + static_cast<size_t>(group) / 2;
  const __m128i low = _mm_set1_epi8(0x0F);
  __m256 acc[M];
  float offset[M];
  for (int t = 0; t < M; ++t) {
    acc[t] = _mm256_setzero_ps();
    offset[t] = 0.0f;
  }
  for (int64_t b = 0; b < nb; ++b) {
    const uint8_t *blk = w + (b / sub) * blockBytes;
    uint16_t dh;
    std::memcpy(&dh, blk, 2);
    const float d = _cvtsh_ss(dh);
    float mn = 0.0f;
    if (Asym) {
      uint16_t mh;
      std::memcpy(&mh, blk + 2, 2);
      mn = _cvtsh_ss(mh);
    }
    __m128i raw = _mm_loadu_si128(
        reinterpret_cast<const __m128i *>(blk + head + (b % sub) * 16));
    __m256i nib = _mm256_set_m128i(_mm_and_si128(_mm_srli_epi16(raw, 4), low),
                                   _mm_and_si128(raw, low));
    for (int t = 0; t < M; ++t) {
      const ActBlock &x = a[t * nb + b];
      __m256i xq = _mm256_loadu_si256(reinterpret_cast<const __m256i *>(x.q));
      acc[t] = _mm256_fmadd_ps(_mm256_set1_ps(d * x.d),
                               sumPairsToFloat(_mm256_maddubs_epi16(nib, xq)),
                               acc[t]);
      offset[t] += Asym ? mn * x.sum : -8.0f * d * x.sum;
    }
  }
  for (int t = 0; t < M; ++t) {
    out[t] = hsum(acc[t]) + offset[t];
  }
}

template <bool Asym>
void dotQ4Avx2Impl(const uint8_t *w, const ActBlock *a, int64_t nb, int m,
                   int64_t group, float *out) {
  switch (m) {
  case 1:
    return dotQ4Rows<Asym, 1>(w, a, nb, group, out);
  case 2:
    return dotQ4Rows<Asym, 2>(w, a, nb, group, out);
  case 3:
    return dotQ4Rows<Asym, 3>(w, a, nb, group, out);
  default:
    return dotQ4Rows<Asym, 4>(w, a, nb, group, out);
  }
}

void dotQ4Avx2(const uint8_t *w, const ActBlock *a, int64_t nb, int m,
               int64_t group, float *out) {
  dotQ4Avx2Impl<false>(w, a, nb, m, group, out);
}

void dotQ4AsymAvx2(const uint8_t *w, const ActBlock *a, int64_t nb, int m,
                   int64_t group, float *out) {
  dotQ4Avx2Impl<true>(w, a, nb, m, group, out);
}

} // namespace

const KernelTable *avx2Kernels() {
  static const KernelTable table = {
      "avx2",   dotF32Avx2, dotF16Avx2, dotBF16Avx2,  axpyAvx2,
      dotAvx2,  dotQ8Avx2,  dotQ4Avx2,  dotQ4AsymAvx2};
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
