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

#include "runtime/kernels/quant_tiles.h"
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

/// The AVX2 table, looked up once (every AVX-512 CPU has AVX2).
const KernelTable *const kAvx2 = avx2Kernels();

// Several activation rows (prefill) run the AVX2 tiles: on the Xeon measured
// (docs/PERFORMANCE.md) 512-bit FMA tiles ran prefill at half the AVX2 speed,
// while one row (decode, bound by memory) gained from the wider loads.
void dotF32(const float *w, int64_t ldw, int r, const float *x, int64_t ldx,
            int m, int64_t k, float *out) {
  if (m > 1) {
    return kAvx2->dotF32(w, ldw, r, x, ldx, m, k, out);
  }
  dispatchTile(w, ldw, r, x, ldx, m, k, out, loadF32);
}

void dotF16(const uint16_t *w, int64_t ldw, int r, const float *x,
            int64_t ldx, int m, int64_t k, float *out) {
  if (m > 1) {
    return kAvx2->dotF16(w, ldw, r, x, ldx, m, k, out);
  }
  dispatchTile(w, ldw, r, x, ldx, m, k, out, loadF16);
}

void dotBF16(const uint16_t *w, int64_t ldw, int r, const float *x,
             int64_t ldx, int m, int64_t k, float *out) {
  if (m > 1) {
    return kAvx2->dotBF16(w, ldw, r, x, ldx, m, k, out);
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

/// A 2:4 block's 16 values.
template <int32_t Format> inline __m512 sparseValues(const uint8_t *blk) {
  if constexpr (Format == LLMC_FORMAT_S24) {
    return _mm512_cvtph_ps(_mm256_loadu_si256(reinterpret_cast<const __m256i *>(blk)));
  } else {
    return _mm512_mul_ps(
        _mm512_cvtepi32_ps(_mm512_cvtepi8_epi32(sparseCodes<Format>(blk))),
        _mm512_set1_ps(sparseScale(blk)));
  }
}

/// 2:4 rows: a block's 32 index bits become the 16 columns its kept values
/// multiply (lane L's position sits at bit 2L, its run starts at column
/// 4·(L/2)), one two-register permute gathers those activations, one FMA
/// takes all 16 values. A partial last block runs in the generic twin.
template <int32_t Format> struct SparseAvx512 {
static void run(const uint8_t *w, size_t ldw, int r, const float *x,
                int64_t ldx, int m, int64_t k, float *out) {
  const __m512i shifts = _mm512_setr_epi32(0, 2, 4, 6, 8, 10, 12, 14, 16, 18,
                                           20, 22, 24, 26, 28, 30);
  const __m512i runs = _mm512_setr_epi32(0, 0, 4, 4, 8, 8, 12, 12, 16, 16, 20,
                                         20, 24, 24, 28, 28);
  const __m512i three = _mm512_set1_epi32(3);
  const size_t bytes = sparseBlockBytes(Format);
  const int64_t full = k / kS24Columns;
  for (int i = 0; i < r; ++i) {
    const uint8_t *row = w + i * ldw;
    __m512 acc[4] = {_mm512_setzero_ps(), _mm512_setzero_ps(),
                     _mm512_setzero_ps(), _mm512_setzero_ps()};
    for (int64_t b = 0; b < full; ++b) {
      const uint8_t *blk = row + b * bytes;
      uint32_t bits;
      std::memcpy(&bits, blk + bytes - 4, 4);
      const __m512i lanes = _mm512_add_epi32(
          runs, _mm512_and_si512(
                    _mm512_srlv_epi32(_mm512_set1_epi32(static_cast<int>(bits)),
                                      shifts),
                    three));
      const __m512 v = sparseValues<Format>(blk);
      for (int t = 0; t < m; ++t) {
        const float *xb = x + t * ldx + b * kS24Columns;
        const __m512 xs = _mm512_permutex2var_ps(
            _mm512_loadu_ps(xb), lanes, _mm512_loadu_ps(xb + 16));
        acc[t] = _mm512_fmadd_ps(v, xs, acc[t]);
      }
    }
    float tail[8];
    sparseTail(row, Format, x, ldx, m, k, tail);
    for (int t = 0; t < m; ++t) {
      out[i * 4 + t] = _mm512_reduce_add_ps(acc[t]) + tail[t];
    }
  }
}
};

void dotSparse(const uint8_t *w, size_t ldw, int32_t format, int r,
               const float *x, int64_t ldx, int m, int64_t k, float *out) {
  dispatchSparse<SparseAvx512>(w, ldw, format, r, x, ldx, m, k, out);
}

/// VNNI: four unsigned-by-signed byte products summed into int32 at once.
struct VnniDot {
  static __m256i sum(__m256i u, __m256i s) {
    return _mm256_dpbusd_epi32(_mm256_setzero_si256(), u, s);
  }
};

} // namespace

const KernelTable *avx512Kernels() {
  static const KernelTable table = {
      "avx512",           dotF32, dotF16, dotBF16, axpy, dot,
      dotQuant<VnniDot, 0>, dotQuant<VnniDot, 1>, dotQuant<VnniDot, 2>,
      axpyF16, dotSparse};
  // The AVX2 table serves the multi-row float tiles (every AVX-512 CPU has
  // AVX2).
  static const bool supported =
      avx2Kernels() != nullptr &&
      __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw") &&
      __builtin_cpu_supports("avx512vl") &&
      __builtin_cpu_supports("avx512vnni") && __builtin_cpu_supports("fma") &&
      cpuHasF16C();
  return supported ? &table : nullptr;
}

} // namespace llmc::kernels

#else

namespace llmc::kernels {
const KernelTable *avx512Kernels() { return nullptr; }
} // namespace llmc::kernels

#endif
